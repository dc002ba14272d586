"""Errors that reach a user carry what went wrong and what to do about it."""


class ArchivistError(Exception):
    """Base of every error the product reports to a user as a message, not a traceback."""


class ConfigError(ArchivistError):
    """A setting is wrong: names the setting and the value."""


class IndexMismatchError(ArchivistError):
    """The index was built with another embedder than the one configured."""


class IndexLockedError(ArchivistError):
    """Another process is writing the index."""


class EmptyIndexError(ArchivistError):
    """Search was asked of an index that holds nothing yet."""


class IndexWriteError(ArchivistError):
    """A commit could not write its files in full (a full disk): nothing was published."""


class IndexCorruptError(ArchivistError):
    """A file of the index is missing or damaged: names the file and what to do."""
