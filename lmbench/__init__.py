"""lmbench: compare n-gram and neural language models on identical data, honestly and fast."""

__version__ = "0.1.0"
