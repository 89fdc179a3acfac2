"""`make run`: debug on, embedded defaults, nothing to install but Python."""

from .base import *
from .environment import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
