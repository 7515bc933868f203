"""The dataset engine: a library over the release store, with no Flask imports; start at api.Engine."""
