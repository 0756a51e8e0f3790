"""A region's Lambda service: the template's functions with that region's environment, their
handlers imported unchanged from functions/, and invocations run concurrently (each function in
containers of its own in AWS; threads here) within the function's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import importlib
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from localcloud.aws import call_counter, faults
from localcloud.lambda_.context import LambdaContext
from stack_definition.repository import ROOT
from stack_definition.template import Template

Handler = Callable[[dict[str, Any], Any], Any]


class TooManyRequestsException(Exception):
    """Lambda throttled the invocation (429): the function did not run. API Gateway answers its
    client with a 500; an event source mapping retries (faults.py plays it, as reserved
    concurrency 0 would: `ReservedFunctionConcurrentInvocationLimitExceeded`)."""

    def __init__(self, function_id: str) -> None:
        super().__init__(f"Rate Exceeded: {function_id} (ReservedFunctionConcurrentInvocationLimitExceeded)")


# Lambda gives every function these; locally there is no X-Ray daemon to trace to.
LOCAL_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}


def region_environment(
    template: Template,
    region: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    refs: Mapping[str, str],
    aws_endpoint: str,
    local_urls: Mapping[str, str],
) -> dict[str, str]:
    """The variables of every function in this region, resolved for the local stack with the
    template's parameters (`parameters` overrides their defaults, as a deploy's overrides do).

    All of a region's functions share one process here, so their variables are merged; two
    functions giving one variable different values would be a template this runtime refuses.
    `local_urls` maps an API's logical id to its local base URL, so that the execute-api URL the
    template builds for it (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`) points here.
    """
    ctx = template.context(region, parameters, refs={name: name for name in local_urls} | dict(refs))
    env: dict[str, str] = {}
    for function in template.functions.values():
        for name, raw in function.environment.items():
            value = str(ctx.resolve(raw))
            for api, base in local_urls.items():
                value = re.sub(rf"^https://{api}\.execute-api\.{region}\.amazonaws\.com", base, value)
            if env.get(name, value) != value:
                raise ValueError(f"{name} differs between functions: {env[name]!r} and {value!r}")
            env[name] = value
    return {
        **env,
        **LOCAL_ENVIRONMENT,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL_DYNAMODB": aws_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODBSTREAMS": aws_endpoint,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws_endpoint,
        "AWS_ENDPOINT_URL_SQS": aws_endpoint,
    }


def load_handler(handler: str) -> Handler:
    """Import `package.module.function` from functions/, as the Lambda runtime does."""
    code = str(ROOT / "functions")
    if code not in sys.path:
        sys.path.insert(0, code)
    module, _, name = handler.rpartition(".")
    function: Handler = getattr(importlib.import_module(module), name)
    _isolate_log_keys()
    return function


MAX_CONTAINERS = 16  # per function whose module holds its invocation (below)


def load_container(handler: str, number: int) -> Handler:
    """Another container of a function: its handler's module imported afresh, under a name of its
    own, so that its module-level state (a resolver's current event) is its own."""
    module_name, _, name = handler.rpartition(".")
    found = importlib.util.find_spec(module_name)
    copy = f"{module_name}__container{number}"
    spec = importlib.util.spec_from_file_location(copy, found.origin if found else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {handler} again")
    module = importlib.util.module_from_spec(spec)
    sys.modules[copy] = module
    spec.loader.exec_module(module)
    function: Handler = getattr(module, name)
    _isolate_log_keys()
    return function


class Containers:
    """A function whose module holds the invocation it serves (a powertools resolver keeps the
    event on itself): each container runs one invocation at a time, as in Lambda, and when every
    one is busy another starts (a cold start), up to MAX_CONTAINERS; past that, an invocation
    waits here, holding no thread, until one is free or its caller gives up."""

    def __init__(self, handler: str, first: Handler) -> None:
        self._handler = handler
        self._idle: asyncio.Queue[Handler] = asyncio.Queue()
        self._idle.put_nowait(first)
        self.started = 1
        self._starting: set[asyncio.Task[None]] = set()

    async def acquire(self) -> Handler:
        if self._idle.empty() and self.started < MAX_CONTAINERS:
            self.started += 1
            task = asyncio.create_task(self._start(self.started))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        return await self._idle.get()

    async def _start(self, number: int) -> None:
        try:
            handler = await asyncio.to_thread(load_container, self._handler, number)
        except Exception:
            logging.getLogger("lambda").exception("could not start a container of %s", self._handler)
            self.started -= 1
            return
        self._idle.put_nowait(handler)

    def release(self, handler: Handler) -> None:
        self._idle.put_nowait(handler)


# ---- one invocation's log keys ---------------------------------------------------------------
# In Lambda a container runs one invocation at a time, so a module-level powertools Logger can
# keep the invocation's keys (function name, request id, connection id...) in its formatter. Here a
# region's functions run concurrently on threads of one process around that one Logger, and each
# would tag the others' records. So every invocation runs in a context of its own, and each
# powertools handler's formatter is replaced (logging's `Handler.setFormatter`) by one that is
# powertools' own formatter per invocation: a copy of it, with the keys set at import (the
# container's), made when the invocation first logs or appends a key.
_invocation_formatters: contextvars.ContextVar[dict[int, Any]] = contextvars.ContextVar(
    "invocation_formatters"
)


def _per_invocation_formatter(container: Any) -> Any:
    """A powertools formatter (the documented `BasePowertoolsFormatter` interface) that hands every
    call to the invocation's own copy of `container`, or to `container` outside any invocation."""
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

    class PerInvocationFormatter(BasePowertoolsFormatter):
        def current(self) -> Any:
            scopes = _invocation_formatters.get(None)
            if scopes is None:
                return container
            own = scopes.get(id(self))
            if own is None:
                own = scopes[id(self)] = copy.copy(container)
                own.log_format = dict(container.log_format)
            return own

        def format(self, record: logging.LogRecord) -> str:
            formatted: str = self.current().format(record)
            return formatted

        def append_keys(self, **additional_keys: Any) -> None:
            self.current().append_keys(**additional_keys)

        def get_current_keys(self) -> dict[str, Any]:
            keys: dict[str, Any] = self.current().get_current_keys()
            return keys

        def remove_keys(self, keys: Iterable[str]) -> None:
            self.current().remove_keys(keys)

        def clear_state(self) -> None:
            self.current().clear_state()

        def append_context_keys(self, **additional_keys: Any) -> Any:
            return self.current().append_context_keys(**additional_keys)

        def thread_safe_append_keys(self, **additional_keys: Any) -> None:
            self.current().thread_safe_append_keys(**additional_keys)

        def thread_safe_get_current_keys(self) -> dict[str, Any]:
            keys: dict[str, Any] = self.current().thread_safe_get_current_keys()
            return keys

        def thread_safe_remove_keys(self, keys: Iterable[str]) -> None:
            self.current().thread_safe_remove_keys(keys)

        def thread_safe_clear_keys(self) -> None:
            self.current().thread_safe_clear_keys()

    return PerInvocationFormatter()


def _isolate_log_keys() -> None:
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler.formatter, LambdaPowertoolsFormatter):
                handler.setFormatter(_per_invocation_formatter(handler.formatter))


# ---- one invocation's resolver state ----------------------------------------------------------
# Powertools' resolvers keep the event they resolve on their base class (`BaseRouter.current_event`
# and `.lambda_context`), for every resolver of the process: right in a Lambda container, which
# runs one invocation at a time. Here containers share a process, so those two attributes are kept
# per invocation context, like the log keys above.
_router_state: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("router_state")


class _PerInvocation:
    """An attribute of the resolvers' base class (read or set on it or on any resolver), kept in
    the invocation's context."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        try:
            return _router_state.get()[self.name]
        except (LookupError, KeyError):
            raise AttributeError(self.name) from None

    def __set__(self, instance: Any, value: Any) -> None:
        state = _router_state.get(None)
        if state is None:
            _router_state.set(state := {})
        state[self.name] = value


@cache
def _isolate_router_state() -> None:
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    names = ("current_event", "lambda_context")
    for name in names:  # in the class's own dict first: what its subclasses and instances find
        setattr(BaseRouter, name, _PerInvocation(name))
    meta = type(
        f"PerInvocation{type(BaseRouter).__name__}",
        (type(BaseRouter),),
        {n: _PerInvocation(n) for n in names},
    )
    BaseRouter.__class__ = meta  # type: ignore[method-assign]  # and `BaseRouter.current_event = ...`


def keeps_invocation_in_module(handler: Handler) -> bool:
    """Whether the handler's module holds a powertools event resolver. A resolver keeps the event
    it is resolving on itself (module state): right in Lambda, where a container runs one
    invocation at a time; here, where one process is every container of a function, two
    overlapping invocations would answer each other's requests."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    module = sys.modules.get(handler.__module__)
    return module is not None and any(isinstance(value, BaseRouter) for value in vars(module).values())


def invoke(handler: Handler, event: dict[str, Any], context: Any, function_id: str | None = None) -> Any:
    """Call a handler as one Lambda invocation, with log keys of its own."""
    return contextvars.Context().run(_invoke, handler, event, context, function_id)


def _invoke(handler: Handler, event: dict[str, Any], context: Any, function_id: str | None) -> Any:
    _invocation_formatters.set({})
    call_counter.invoking.set(function_id)
    return handler(event, context)


class LambdaRuntime:
    """A region's functions, ready to invoke. Built once per region process: the environment is
    set before any handler is imported, as a container's is."""

    def __init__(
        self, template: Template, region: str, environment: Mapping[str, str], invoked: asyncio.Event
    ):
        os.environ.update(environment)
        self._template = template
        self._region = region
        self._handlers = {logical_id: load_handler(f.handler) for logical_id, f in template.functions.items()}
        # Containers of their own for a function whose module holds its invocation; the others'
        # invocations overlap in one module, each with its own log keys, as several containers'
        # would.
        if any(keeps_invocation_in_module(handler) for handler in self._handlers.values()):
            _isolate_router_state()
        self._containers = {
            logical_id: Containers(template.functions[logical_id].handler, handler)
            for logical_id, handler in self._handlers.items()
            if keeps_invocation_in_module(handler)
        }
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix=f"lambda-{region}")
        self._invoked = invoked  # an invocation may have written: whoever waits on it looks now

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        function = self._template.functions[function_id]
        context = LambdaContext(
            f"{self._template.stack_name}-{function_id}", self._region, function.memory, function.timeout
        )
        if faults.failing("lambda"):
            raise TooManyRequestsException(function_id)  # not billed: nothing ran
        # billed per request, whatever it answers
        call_counter.count(f"lambda.Invoke:{function_id}", function=function_id)
        try:
            return await asyncio.wait_for(self._run(function_id, event, context), timeout=function.timeout)
        finally:
            self._invoked.set()

    async def _run(self, function_id: str, event: dict[str, Any], context: Any) -> Any:
        loop = asyncio.get_running_loop()
        handler = self._handlers[function_id]
        containers = self._containers.get(function_id)
        if containers is None:
            return await loop.run_in_executor(self._executor, invoke, handler, event, context, function_id)
        container = await containers.acquire()
        job = self._executor.submit(invoke, container, event, context, function_id)

        def release(_: Any) -> None:
            # When the handler returns, not when its caller stops waiting: a timed-out
            # invocation's container is busy until its code ends.
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(containers.release, container)

        job.add_done_callback(release)
        return await asyncio.wrap_future(job)
