"""Reading results and identity events back out of Redis."""
