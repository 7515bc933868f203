"""The rules of the product, each in one module; views and jobs call these."""
