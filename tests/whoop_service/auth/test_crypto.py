import pytest
from cryptography.fernet import Fernet

from shared.settings import ConfigurationError
from whoop_service.auth.crypto import TokenCipher, TokenDecryptError

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip_and_ciphertext_hides_the_secret():
    cipher = TokenCipher([NEW])
    ct = cipher.encrypt("user-1", "access", "whoop-access-secret")
    assert "whoop-access-secret" not in ct
    assert cipher.decrypt("user-1", "access", ct) == "whoop-access-secret"


def test_ciphertext_cannot_move_to_another_user_or_column():
    cipher = TokenCipher([NEW])
    ct = cipher.encrypt("user-1", "refresh", "r")
    with pytest.raises(TokenDecryptError, match="another user"):
        cipher.decrypt("user-2", "refresh", ct)
    with pytest.raises(TokenDecryptError, match="another user"):
        cipher.decrypt("user-1", "access", ct)


def test_key_rotation_old_ciphertexts_still_decrypt_and_rotate_to_the_new_key():
    old_ct = TokenCipher([OLD]).encrypt("u", "access", "s")
    rotated = TokenCipher([NEW, OLD])
    assert rotated.decrypt("u", "access", old_ct) == "s"
    new_ct = rotated.rotate(old_ct)
    assert TokenCipher([NEW]).decrypt("u", "access", new_ct) == "s"
    with pytest.raises(TokenDecryptError, match="current keys"):
        TokenCipher([NEW]).decrypt("u", "access", old_ct)


def test_bad_key_is_a_configuration_error_that_does_not_echo_it():
    with pytest.raises(ConfigurationError, match="entry 2") as err:
        TokenCipher([NEW, "not-a-real-key-value"])
    assert "not-a-real-key-value" not in str(err.value)
