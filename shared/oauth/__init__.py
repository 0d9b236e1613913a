"""User sign-in with Adobe IMS: configuration, the encrypted token store and the token manager."""
