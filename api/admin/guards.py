from api.auth.guards import requires_admin

__all__ = ["requires_admin"]
