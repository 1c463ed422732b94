from omo.shared.libpq import numbered


def test_pyformat_placeholders_become_numbered_and_repeats_share_a_number() -> None:
    sql = "SELECT a FROM t WHERE b = %(x)s::INTEGER AND c LIKE 'q%%' OR d = %(y_1)s OR e = %(x)s"
    text, names = numbered(sql)
    assert text == b"SELECT a FROM t WHERE b = $1::INTEGER AND c LIKE 'q%' OR d = $2 OR e = $1"
    assert names == ("x", "y_1")


def test_a_statement_without_parameters() -> None:
    assert numbered("SELECT 1") == (b"SELECT 1", ())
