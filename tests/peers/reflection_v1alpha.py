"""A gRPC server-reflection client that speaks only `grpc.reflection.v1alpha`: the one of
Python's grpcio-reflection package (ProtoReflectionDescriptorDatabase).

Usage: reflection_v1alpha.py HOST:PORT SERVICE

Lists the server's services, fetches the file that defines SERVICE, resolves SERVICE with its
dependencies through a descriptor pool over the same reflection stream, and prints one JSON
object: {"services": [...], "file": ..., "package": ..., "methods": [...]}. A gRPC error is
printed on stderr as "CODE: details" and exits 2.
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    address, service = sys.argv[1], sys.argv[2]
    with grpc.insecure_channel(address) as channel:
        try:
            database = ProtoReflectionDescriptorDatabase(channel)
            services = sorted(database.get_services())
            file = database.FindFileContainingSymbol(service)
            pool = DescriptorPool(database)
            methods = [m.name for m in pool.FindServiceByName(service).methods]
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 2
    print(
        json.dumps(
            {
                "services": services,
                "file": file.name,
                "package": file.package,
                "methods": methods,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
