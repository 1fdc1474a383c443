"""The only module that touches the database: ``Store`` (see ``store.py``) and the batch types."""

from engine.store.batch import BatchError
from engine.store.lock import LockReentryError
from engine.store.schema import SchemaError
from engine.store.store import Store

__all__ = ["BatchError", "LockReentryError", "SchemaError", "Store"]
