"""Custom::Migrations (CloudFormation custom resource): migrates the schema on deploy."""

from jobworker.aws.migrate_resource import lambda_handler

__all__ = ["lambda_handler"]
