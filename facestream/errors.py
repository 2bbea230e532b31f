"""Exceptions a user can act on. Each message says what is wrong and what to do."""


class FacestreamError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero, without a traceback."""


class ConfigError(FacestreamError):
    """A setting or config file is invalid."""


class ServerError(FacestreamError):
    """The embedded Redis cannot be started, reached or stopped."""


class BadFrame(FacestreamError):
    """A frame record cannot be processed (missing field, corrupt JPEG, oversize). Dead-lettered, never retried."""


class BadRecord(FacestreamError):
    """An entry of an output stream (results, events, dead letters) that is not one of our records."""


class GalleryError(FacestreamError):
    """The gallery index is missing, mismatched, or an identity is unknown."""


class BackendUnavailable(FacestreamError):
    """An optional model backend is not installed."""
