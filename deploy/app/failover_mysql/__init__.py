"""Django's MySQL backend, connecting to the first reachable host in DB_HOSTS."""
