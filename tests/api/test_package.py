"""The package's public names."""

import emergency_api


def test_public_names_are_pinned_and_sorted() -> None:
    assert emergency_api.__all__ == ["ApiKey", "ApiSettings", "KeyFileError", "KeyStore", "create_app"]
    assert emergency_api.__all__ == sorted(emergency_api.__all__)
    for name in emergency_api.__all__:
        assert getattr(emergency_api, name) is not None
