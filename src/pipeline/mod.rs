//! Pipeline workers as tokio tasks: ingest, router, delivery, scheduler, remediation, janitor.
