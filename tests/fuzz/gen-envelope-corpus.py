#!/usr/bin/python3
# Regenerate tests/fuzz/corpus/fuzz-envelope/: real Envelope and Reply
# messages (valid and invalid) in the wire format of proto/cric/internal.proto.
# Usage, from the top of the tree:
#   make pyproto && PYTHONPATH=build/py /usr/bin/python3 tests/fuzz/gen-envelope-corpus.py
import os

from proto.cric import internal_pb2 as pb

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz-envelope')
os.makedirs(d, exist_ok=True)


def w(name, b):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(b)


E=pb.Envelope; R=pb.Reply
w('env-health', E(method='cric.Health', request_id='0f3a9c2e7b1d4a66', deadline_unix_ns=1735689600123456789).SerializeToString())
w('env-cri-version', E(method='/runtime.v1.RuntimeService/Version', request_id='a1b2c3d4e5f60718293a4b5c6d7e8f90', deadline_unix_ns=1735689602000000000, payload=b'\n\x060.1.0').SerializeToString())
w('env-netstatus-nodeadline', E(method='cric.netd.NetworkStatus', request_id='req-1.x_Y').SerializeToString())
w('env-method-only', E(method='cric.Health').SerializeToString())
w('env-long-method', E(method='/runtime.v1.RuntimeService/'+'X'*229, request_id='i'*64, deadline_unix_ns=2**62).SerializeToString())
w('env-payload-1k', E(method='/runtime.v1.ImageService/PullImage', request_id='deadbeef', deadline_unix_ns=1, payload=bytes(range(256))*4).SerializeToString())
w('env-bad-method-space', E(method='cric Health', request_id='x').SerializeToString())
w('env-bad-reqid', E(method='cric.Health', request_id='../etc/passwd').SerializeToString())
w('env-reqid-dot', E(method='cric.Health', request_id='.hidden').SerializeToString())
w('env-reqid-65', E(method='cric.Health', request_id='a'*65).SerializeToString())
w('env-method-257', E(method='m'*257).SerializeToString())
w('env-negative-deadline', E(method='cric.Health', deadline_unix_ns=-1).SerializeToString())
w('env-empty', b'')
w('env-truncated', E(method='/runtime.v1.RuntimeService/Version', payload=b'abc').SerializeToString()[:-2])
w('env-method-nul', b'\x0a\x07cric\x00He\x12\x01a')
w('env-bad-utf8', b'\x0a\x04\xff\xfeab')
w('env-wrong-wiretype', b'\x0d\x01\x02\x03\x04')
w('env-duplicate-fields', E(method='a.b').SerializeToString()+E(method='c.d', request_id='r').SerializeToString())
w('rep-ok', R(code=0, payload=pb.HealthResponse(daemon='netd', version='0.1.0+gabc1234', pid=4242, started_at_unix_ns=1735689600000000000).SerializeToString()).SerializeToString())
w('rep-netstatus', R(code=0, payload=pb.NetworkStatusResponse(ready=False, reason='NetworkPluginNotReady', message='CNI plugin "bridge" not found in /opt/cni/bin').SerializeToString()).SerializeToString())
w('rep-unavailable', R(code=14, message='runtimed: connection refused').SerializeToString())
w('rep-deadline', R(code=4, message='deadline exceeded').SerializeToString())
w('rep-unauthenticated', R(code=16, message='x').SerializeToString())
w('rep-code-17', R(code=17, message='out of range').SerializeToString())
w('rep-code-max', R(code=2**32-1).SerializeToString())
w('rep-message-nul', b'\x08\x02\x12\x03\x00ab\x1a\x02hi')
