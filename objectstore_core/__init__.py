"""objectstore_core: the sans-IO protocol layer of the Objectstore client.

Pure functions, frozen values, codecs and flows; no sockets, no reading,
writing or stat of files, no clock, environment or CPU count, no Python
threads or event loops. What it needs from outside it takes as arguments:
the twins measure a file's size, the CPU count, the time and the
environment and pass them in (:func:`upload_size`, :func:`zstd_plan`,
``now=``, ``environ``), and they perform the steps a flow yields, among
them :class:`Compress` (libzstd may spread it over two native worker
threads). ``objectstore_sync`` (urllib3) and ``objectstore_async``
(httpcore) drive these flows and re-export the shared models.
"""

from objectstore_core._auth import KeyCredentials, SecretKey, TokenGenerator, TokenProvider
from objectstore_core._batch import BatchDecoder, BatchPart, EncodedPart, encode_batch
from objectstore_core._batch_api import BatchBase, wrap_fetched
from objectstore_core._batch_flow import BatchBuilder, BatchJob, validate_concurrency
from objectstore_core._batch_results import BatchError, BatchResult, BatchResults, FetchedObject
from objectstore_core._client_base import BaseClient
from objectstore_core._codec import (
    MULTITHREAD_MIN,
    IdentityDecoder,
    ZstdContexts,
    ZstdDecoder,
    ZstdEncoder,
    compress,
    compress_bound,
    compressible,
    decompress,
    zstd_plan,
    zstd_workers,
)
from objectstore_core._config import (
    DEFAULT_USER_AGENT,
    ClientConfig,
    ClientTarget,
    MetricsBackend,
    NoOpMetricsBackend,
    Timeout,
    client_config,
    config_from_env,
    session_target,
    token_from_env,
)
from objectstore_core._download import Download, check_chunk_size
from objectstore_core._durations import (
    format_duration,
    format_expiration,
    format_timestamp,
    parse_duration,
    parse_expiration,
    parse_timestamp,
)
from objectstore_core._errors import (
    ConnectError,
    ConnectTimeout,
    ExpiryExtensionRejected,
    Forbidden,
    IntegrityError,
    MultipartCompleteError,
    ObjectNotFound,
    ObjectstoreError,
    PoolTimeout,
    ProtocolError,
    RateLimited,
    ReadError,
    ReadTimeout,
    RequestError,
    ServerError,
    TimeoutError,
    TransportError,
    Unauthorized,
    WriteError,
    WriteTimeout,
    error_for_response,
)
from objectstore_core._http import (
    BinaryReader,
    Buffer,
    Clock,
    Compress,
    Credentials,
    Flow,
    Join,
    Joined,
    LengthCheck,
    Measure,
    Payload,
    PayloadKind,
    ReadAt,
    ReadBody,
    Request,
    Response,
    SendRequest,
    Sleep,
    Spawn,
    Upload,
    UploadReplay,
    WriteAt,
    check_upload_chunk,
    classify_payload,
    upload_size,
)
from objectstore_core._metadata import (
    Metadata,
    decode_header_value,
    encode_header_value,
    metadata_headers,
)
from objectstore_core._models import (
    Compression,
    ExpirationPolicy,
    Permission,
    Scope,
    TimeToIdle,
    TimeToLive,
    Usecase,
)
from objectstore_core._multipart import (
    MAX_PART_NUMBER,
    CompletePart,
    MultipartFlows,
    MultipartUploadBase,
    PartInfo,
    initiate_multipart_flow,
)
from objectstore_core._operations import (
    GetOutcome,
    delete_flow,
    extend_expiry_flow,
    get_flow,
    head_flow,
    parse_accept_encoding,
    put_flow,
)
from objectstore_core._paths import Target, encode_path, encode_query
from objectstore_core._presign import MAX_PRESIGN_DURATION, SUPPORTED_METHODS, build_canonical_form
from objectstore_core._resumable import ResumeHandle, resume_upload_flow
from objectstore_core._retry import RetryPolicy
from objectstore_core._session import BaseSession, SessionFlows, with_return_annotation
from objectstore_core._transfer import (
    check_unchanged,
    download_flow,
    not_found,
    plan_ranges,
    validate_download,
)


def new_encoder(
    size: int | None = None, first: Buffer | None = None, *, cpus: int = 1
) -> ZstdEncoder:
    """The encoder every streamed upload uses: zstd with content checksums.

    At the level and on the libzstd workers :func:`zstd_plan` gives for the
    payload's ``size`` (see :func:`upload_size`), its ``first`` piece and the
    ``cpus`` the twin counted: level 3, or 1 for a large payload that does not
    compress; two workers where they pay, else the calling thread.
    """
    level, threads = zstd_plan(size, first, cpus)
    return ZstdEncoder(level=level, checksum=True, threads=threads, size=size)


__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_PART_NUMBER",
    "MAX_PRESIGN_DURATION",
    "MULTITHREAD_MIN",
    "SUPPORTED_METHODS",
    "BaseClient",
    "BaseSession",
    "BatchBase",
    "BatchBuilder",
    "BatchDecoder",
    "BatchError",
    "BatchJob",
    "BatchPart",
    "BatchResult",
    "BatchResults",
    "BinaryReader",
    "Buffer",
    "ClientConfig",
    "ClientTarget",
    "Clock",
    "CompletePart",
    "Compress",
    "Compression",
    "ConnectError",
    "ConnectTimeout",
    "Credentials",
    "Download",
    "EncodedPart",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "FetchedObject",
    "Flow",
    "Forbidden",
    "GetOutcome",
    "IdentityDecoder",
    "IntegrityError",
    "Join",
    "Joined",
    "KeyCredentials",
    "LengthCheck",
    "Measure",
    "Metadata",
    "MetricsBackend",
    "MultipartCompleteError",
    "MultipartFlows",
    "MultipartUploadBase",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "ObjectstoreError",
    "PartInfo",
    "Payload",
    "PayloadKind",
    "Permission",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadAt",
    "ReadBody",
    "ReadError",
    "ReadTimeout",
    "Request",
    "RequestError",
    "Response",
    "ResumeHandle",
    "RetryPolicy",
    "Scope",
    "SecretKey",
    "SendRequest",
    "ServerError",
    "SessionFlows",
    "Sleep",
    "Spawn",
    "Target",
    "TimeToIdle",
    "TimeToLive",
    "Timeout",
    "TimeoutError",
    "TokenGenerator",
    "TokenProvider",
    "TransportError",
    "Unauthorized",
    "Upload",
    "UploadReplay",
    "Usecase",
    "WriteAt",
    "WriteError",
    "WriteTimeout",
    "ZstdContexts",
    "ZstdDecoder",
    "ZstdEncoder",
    "build_canonical_form",
    "check_chunk_size",
    "check_unchanged",
    "check_upload_chunk",
    "classify_payload",
    "client_config",
    "compress",
    "compress_bound",
    "compressible",
    "config_from_env",
    "decode_header_value",
    "decompress",
    "delete_flow",
    "download_flow",
    "encode_batch",
    "encode_header_value",
    "encode_path",
    "encode_query",
    "error_for_response",
    "extend_expiry_flow",
    "format_duration",
    "format_expiration",
    "format_timestamp",
    "get_flow",
    "head_flow",
    "initiate_multipart_flow",
    "metadata_headers",
    "new_encoder",
    "not_found",
    "parse_accept_encoding",
    "parse_duration",
    "parse_expiration",
    "parse_timestamp",
    "plan_ranges",
    "put_flow",
    "resume_upload_flow",
    "session_target",
    "token_from_env",
    "upload_size",
    "validate_concurrency",
    "validate_download",
    "with_return_annotation",
    "wrap_fetched",
    "zstd_plan",
    "zstd_workers",
]
