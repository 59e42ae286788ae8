"""Login credentials of the embedded default: one bcrypt-hashed password per user.

The credentials live in the hub database, in nativeauthenticator's ``users_info``
table, so the hub's login form (`SkydeckNativeAuthenticator`), the admin REST
route and ``skydeck users add`` all read and write the same records through
`set_login`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import bcrypt
from jupyterhub import orm, roles
from nativeauthenticator.orm import UserInfo
from sqlalchemy.orm import Session

from skydeck.hub.auth._names import username_problem

#: Shortest password a person may choose (generated ones are much longer).
MIN_PASSWORD_LENGTH = 8
#: Longest password in bytes (UTF-8): all that bcrypt reads; bcrypt 5 refuses longer ones.
MAX_PASSWORD_BYTES = 72


class LoginError(ValueError):
    """A login cannot be set as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Login:
    """A user's login as just set: the password is shown once and never stored in clear."""

    name: str
    password: str
    created_user: bool


def generate_password() -> str:
    """A random password (about 128 bits)."""
    return secrets.token_urlsafe(16)


def password_fits(password: str) -> bool:
    """Whether bcrypt can hash ``password`` (at most `MAX_PASSWORD_BYTES` in UTF-8)."""
    return len(password.encode("utf-8", "surrogatepass")) <= MAX_PASSWORD_BYTES


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH or not password_fits(password):
        return (
            f"passwords are {MIN_PASSWORD_LENGTH} characters to {MAX_PASSWORD_BYTES} bytes "
            "long; choose another, or leave it out to get a generated one"
        )
    if "\x00" in password:
        return "passwords may not contain NUL characters; choose another"
    return None


def set_password(db: Session, name: str, password: str) -> None:
    """Store ``password`` (hashed) as ``name``'s approved login credential."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    info = UserInfo.find(db, name)
    if info is None:
        db.add(UserInfo(username=name, password=hashed, is_authorized=True))
    else:
        info.password = hashed
        info.is_authorized = True
    db.commit()


def has_password(db: Session, name: str) -> bool:
    """Whether ``name`` has a login credential."""
    return UserInfo.find(db, name) is not None


def set_login(
    db: Session, name: str, password: str | None = None, admin: bool | None = None
) -> Login:
    """Create the hub user ``name`` if missing and give it an approved login.

    ``password`` is generated when not given; ``admin`` (when not None) makes the
    user an admin or not.  The hub database must have been created by the hub
    (``skydeck up`` once).
    """
    problem = username_problem(name)
    if problem:
        raise LoginError(problem)
    if password is None:
        password = generate_password()
    problem = password_problem(password)
    if problem:
        raise LoginError(problem)
    user = orm.User.find(db, name)
    created = user is None
    if user is None:
        user = orm.User(name=name, admin=bool(admin))
        db.add(user)
        roles.assign_default_roles(db, entity=user)
    elif admin is not None and bool(user.admin) != admin:
        user.admin = admin
        roles.assign_default_roles(db, entity=user)
    db.commit()
    set_password(db, name, password)
    return Login(name=name, password=password, created_user=created)
