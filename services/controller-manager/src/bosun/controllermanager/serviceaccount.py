"""ServiceAccount controller: every active namespace has a ServiceAccount named `default`.

Keys are namespace names. A new namespace, or the deletion of a `default` ServiceAccount,
wakes the controller; `sync` creates the account when the cache does not have it.
AlreadyExists means the cache was behind (fine); a Terminating namespace refuses creates,
and is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.errors import AlreadyExistsError, NotFoundError, PreconditionError
from bosun.common.informer import Informer
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller

DEFAULT = "default"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.namespaces: Informer[core_pb2.Namespace] = context.informers.informer("Namespace")
        self.accounts: Informer[core_pb2.ServiceAccount] = context.informers.informer(
            "ServiceAccount"
        )
        self.namespaces.add_handler(on_add=lambda ns: self.enqueue(ns.metadata.name))
        self.accounts.add_handler(on_delete=self._account_deleted)

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.namespaces, self.accounts)

    def _account_deleted(self, account: core_pb2.ServiceAccount) -> None:
        if account.metadata.name == DEFAULT:
            self.enqueue(account.metadata.namespace)

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.store.get(key)
        if namespace is None or namespace.metadata.HasField("deletion_timestamp"):
            return
        if self.accounts.store.get_by_name(DEFAULT, key) is not None:
            return
        account = core_pb2.ServiceAccount(api_version="v1", kind="ServiceAccount")
        account.metadata.name = DEFAULT
        account.metadata.namespace = key
        try:
            await self.client.service_accounts.create(account)
        except (AlreadyExistsError, NotFoundError, PreconditionError):
            return  # exists already, or the namespace is gone or terminating
