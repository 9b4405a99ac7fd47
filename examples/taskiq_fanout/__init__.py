"""
Fan-out over taskiq workers: journey statistics fetched in shards, removals
in batches, by any number of worker processes sharing one rate budget in Redis.

See docs/recipes/taskiq.md. Run the workers with::

    taskiq worker examples.taskiq_fanout.broker:broker examples.taskiq_fanout.tasks

and dispatch from anywhere with `examples.taskiq_fanout.dispatch`.
"""
