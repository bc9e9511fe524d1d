"""`python -m redis_ha TASK ...`: the `redis-ha` command, for child processes and scripts."""

from redis_ha.cli.app import main

if __name__ == "__main__":
    main()
