"""The integration's handler registry (`frameio_kit.App`'s base) and finding it from FRAMEIO_APP.

The top layer of `shared`: the registry orchestrates sign-in (`shared.oauth`) and installation
(`shared.install`), so it sits above them and `shared.core` stays the base they build on.
"""
