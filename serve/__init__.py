"""The HTTP endpoint: a litserve ``LitAPI`` over checkpoint bundle(s) (:mod:`serve.api`), its batch
loop (:mod:`serve.batching`), request validation (:mod:`serve.validation`), the OpenAPI models
(:mod:`serve.schemas`) and the ``seq2seq-serve`` server (:mod:`serve.server`; a subprocess
wrapper for tests in :mod:`serve.process`).

litserve is pinned to the version the tests run against (``litserve==0.2.19`` in
pyproject.toml), because these modules use names litserve does not promise to keep:

* :mod:`serve.batching`: ``litserve.loops.base._SENTINEL_VALUE`` and ``_StopLoopError``; subclassing
  ``litserve.loops.simple_loops.BatchedLoop`` (``get_batch_requests``, ``run_batched_loop``,
  ``put_response``, ``put_error_response``); the request-queue item tuple
  ``(response_queue_id, uid, timestamp, payload)``; ``LitAPI.request_timeout``;
  ``litserve.utils.PickleableHTTPException``, ``LitAPIStatus``, ``LoopResponseType``;
  ``litserve.transport.base.MessageTransport``; ``litserve.callbacks.CallbackRunner``.
* :mod:`serve.api`: ``litserve.utils.PickleableHTTPException`` (via ``fastapi.HTTPException``)
  and the ``LitAPI`` hooks.
* :mod:`serve.server`: ``litserve.server.RegularRequestHandler`` (``_prepare_request``,
  ``handle_request``); ``LitServer._register_internal_endpoints``,
  ``_register_api_endpoints``, ``_callback_runner``, ``lit_api``, ``devices``,
  ``workers_per_device``, ``timeout``, ``app``.

Upgrading litserve means re-running ``tests/test_serve.py`` against the new version first.
"""
