"""The local stack: real servers started natively and supervised by supervisord."""

from shopstream.stack.manager import StackError, down, status, up

__all__ = ["StackError", "down", "status", "up"]
