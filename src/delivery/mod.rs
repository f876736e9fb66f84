//! Delivery backends behind one trait: Slack, SMTP, generic webhook, stdout. Filled by the Delivery-pipeline issue.
