"""The marketers' workspace: segments in the browser, mounted by `cip serve` at `/app`.

create_workspace(config=WorkspaceConfig(...), secret=...)  # a Starlette app
UserStore(path=...).add(name=..., password=..., role="editor")  # what `cip users add` does
"""

from serving.workspace.app import COOKIE, create_workspace
from serving.workspace.config import WorkspaceConfig
from serving.workspace.users import ROLES, User, UserStore

__all__ = ["COOKIE", "ROLES", "User", "UserStore", "WorkspaceConfig", "create_workspace"]
