"""Why the store refused a write; the server maps each to one status of the contract."""


class StoreError(Exception):
    """Base class: the message is safe to show to the caller."""


class ItemNotFound(StoreError):
    pass


class TargetNotFound(StoreError):
    pass


class LinkNotFound(StoreError):
    pass


class RefConflict(StoreError):
    """Another item of the project already holds this ref."""


class InvalidLink(StoreError):
    """A link the contract cannot express, such as an item linked to itself."""
