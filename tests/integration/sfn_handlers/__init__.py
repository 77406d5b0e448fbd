"""Tiny Lambda handlers for the Step Functions tests: each folder is a function's CodeUri, run
in-process by `local.lambdas.LocalLambdas`; `ledger` records what they were asked to do."""
