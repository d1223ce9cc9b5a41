"""objectstore_core: the sans-IO protocol layer of the Objectstore client.

Pure functions, frozen values, codecs and flows; no sockets, files, threads
or event loops. ``objectstore_sync`` (urllib3) and ``objectstore_async``
(httpx) drive these flows and re-export the shared models.
"""

from objectstore_core._client_base import BaseClient
from objectstore_core._codec import (
    IdentityDecoder,
    ZstdDecoder,
    ZstdEncoder,
    compress,
    compress_bound,
    decompress,
)
from objectstore_core._config import (
    DEFAULT_USER_AGENT,
    ClientConfig,
    MetricsBackend,
    NoOpMetricsBackend,
    Timeout,
    client_config,
    config_from_env,
    session_target,
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
    Credentials,
    Flow,
    Payload,
    PayloadKind,
    Request,
    Response,
    SendRequest,
    Sleep,
    Upload,
    classify_payload,
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
from objectstore_core._session import BaseSession, SessionFlows, with_return_annotation


def new_encoder() -> ZstdEncoder:
    """The encoder every upload uses: zstd level 3 with content checksums."""
    return ZstdEncoder(level=3, checksum=True)


__all__ = [
    "DEFAULT_USER_AGENT",
    "BaseClient",
    "BaseSession",
    "ClientConfig",
    "Compression",
    "ConnectError",
    "ConnectTimeout",
    "Credentials",
    "Download",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "Flow",
    "Forbidden",
    "GetOutcome",
    "IdentityDecoder",
    "IntegrityError",
    "Metadata",
    "MetricsBackend",
    "MultipartCompleteError",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "ObjectstoreError",
    "Payload",
    "PayloadKind",
    "Permission",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadError",
    "ReadTimeout",
    "Request",
    "RequestError",
    "Response",
    "Scope",
    "SendRequest",
    "ServerError",
    "SessionFlows",
    "Sleep",
    "Target",
    "TimeToIdle",
    "TimeToLive",
    "Timeout",
    "TimeoutError",
    "TransportError",
    "Unauthorized",
    "Upload",
    "Usecase",
    "WriteError",
    "WriteTimeout",
    "ZstdDecoder",
    "ZstdEncoder",
    "check_chunk_size",
    "classify_payload",
    "client_config",
    "compress",
    "compress_bound",
    "config_from_env",
    "decode_header_value",
    "decompress",
    "delete_flow",
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
    "metadata_headers",
    "new_encoder",
    "parse_accept_encoding",
    "parse_duration",
    "parse_expiration",
    "parse_timestamp",
    "put_flow",
    "session_target",
    "with_return_annotation",
]
