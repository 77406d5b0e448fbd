"""A function whose init fails, as a missing dependency makes one fail in Lambda."""

import a_module_that_is_not_installed  # noqa: F401


def lambda_handler(event, context):
    return {}
