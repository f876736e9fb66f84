//! Operator actions: Action, Plan, Policy (the read-only choke point), Executor, audit. Filled by the Operator-actions issue.
