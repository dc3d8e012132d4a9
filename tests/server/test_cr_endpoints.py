from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.web.client import URI

from acs_security.server.requesters import DirectIPEndpointFactory


def endpoint(url: bytes):
    return DirectIPEndpointFactory(MemoryReactorClock(), timeout=5).endpointForURI(URI.fromBytes(url))


def test_ip_addresses_are_connected_to_directly_and_names_resolved():
    assert isinstance(endpoint(b"http://10.0.0.23:8734/cr"), TCP4ClientEndpoint)
    assert isinstance(endpoint(b"http://[2001:db8::7]:8734/cr"), TCP6ClientEndpoint)
    assert isinstance(endpoint(b"http://phone.example.net:8734/cr"), HostnameEndpoint)


def test_connecting_to_an_ip_needs_no_resolver():
    reactor = MemoryReactorClock()
    factory = DirectIPEndpointFactory(reactor, timeout=5)
    factory.endpointForURI(URI.fromBytes(b"http://127.0.0.1:9000/x")).connect(object())
    host, port, _factory, timeout, _bind = reactor.tcpClients[0]
    assert (host, port, timeout) == ("127.0.0.1", 9000, 5)
