"""Typed API errors: one exception class per gRPC status the apiserver returns.

The client turns every `grpc.aio.AioRpcError` into one of these, so callers write
`except ConflictError:` rather than comparing status codes.
"""

from __future__ import annotations

import grpc


class ApiError(Exception):
    """An error returned by the apiserver (or the transport), with its gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class NotFoundError(ApiError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(ApiError):
    code = grpc.StatusCode.ALREADY_EXISTS


class ConflictError(ApiError):
    """The object changed since it was read (stale resourceVersion): re-read and retry."""

    code = grpc.StatusCode.ABORTED


class InvalidError(ApiError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class PreconditionError(ApiError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class UnauthenticatedError(ApiError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ForbiddenError(ApiError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(ApiError):
    """Overload (too many requests in flight) or a request or object that is too large."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ExpiredError(ApiError):
    """A watch or continue token refers to a resourceVersion the server no longer holds."""

    code = grpc.StatusCode.OUT_OF_RANGE


class UnavailableError(ApiError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(ApiError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


_BY_CODE: dict[grpc.StatusCode, type[ApiError]] = {
    cls.code: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        InvalidError,
        PreconditionError,
        UnauthenticatedError,
        ForbiddenError,
        ResourceExhaustedError,
        ExpiredError,
        UnavailableError,
        DeadlineExceededError,
    )
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The typed ApiError for a failed RPC."""
    code = error.code()
    cls = _BY_CODE.get(code, ApiError)
    return cls(error.details() or code.name, code=code)
