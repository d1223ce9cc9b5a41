"""objectstore_sync: the blocking Objectstore client, on urllib3.

Drop-in for the official ``objectstore_client``: change the import and the
same code works. Everything shared with the async twin comes from
``objectstore_core`` and is re-exported here.

>>> from objectstore_sync import Client, Usecase
>>> client = Client("http://127.0.0.1:8888")                   # doctest: +SKIP
>>> session = client.session(Usecase("attachments"), org=42)    # doctest: +SKIP
>>> key = session.put(b"hello")                                 # doctest: +SKIP
>>> session.get(key).read()                                     # doctest: +SKIP
b'hello'
"""

from objectstore_core import shared
from objectstore_core.shared import *  # noqa: F403  (the names both twins share)
from objectstore_sync._batch import Batch
from objectstore_sync._client import Client, MultipartUpload, Session
from objectstore_sync._response import GetResponse, Payload

__all__ = [
    "Batch",
    "Client",
    "GetResponse",
    "MultipartUpload",
    "Payload",
    "Session",
]
__all__ += shared.__all__
