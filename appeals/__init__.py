"""Appeals against inclusion in published information-operations datasets.

`create_app` is imported lazily so that the domain (models, services) stays
importable without the web stack: workers load it without Flask.
"""


def create_app(settings=None, **overrides):
    """Build the Flask application; see appeals.app for the table of contents."""
    from appeals.app import create_app as _create_app

    return _create_app(settings, **overrides)
