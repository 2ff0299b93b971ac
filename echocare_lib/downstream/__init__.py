"""Downstream adaptation (paper section 4): task registry, encoder zoo, heads, fine-tuning
trials with a cached tidy results store, metrics and statistics.

Notebooks 03-11 use it as::

    from echocare_lib.downstream import TASKS, run_trials, stats
    rows = run_trials("breast_birads", ["echocare", "scratch", "imagenet"], profile="cpu")
"""
from . import metrics, stats
from .registry import TASKS, Task, get_task, tasks_of
from .trials import run_trials, task_data
from .zoo import build_encoder

__all__ = ["TASKS", "Task", "get_task", "tasks_of", "run_trials", "task_data",
           "build_encoder", "metrics", "stats"]
