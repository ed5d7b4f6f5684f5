"""Built-in task strategies."""
