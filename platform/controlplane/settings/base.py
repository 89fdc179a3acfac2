"""Every concern, composed. Environment modules import this and adjust."""

from .api import *
from .broker import *
from .cache import *
from .core import *
from .database import *
from .dataplane import *
from .exports import *
from .invoices import *
from .logs import *
from .metering import *
from .metrics import *
from .queues import *
from .recommendation import *
from .stripe import *
from .webhooks import *
