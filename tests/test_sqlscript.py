from server.sqlscript import split_statements


def test_semicolons_in_strings_and_comments():
    script = """
    -- a comment; with a semicolon
    SELECT 'a;b' AS s;
    /* block; comment */
    SELECT "x;y", 2;

    -- trailing comment only
    """
    assert split_statements(script) == [
        "-- a comment; with a semicolon\n    SELECT 'a;b' AS s",
        '/* block; comment */\n    SELECT "x;y", 2',
    ]


def test_last_statement_without_semicolon_and_empty():
    assert split_statements("SELECT 1;\nSELECT 2") == ["SELECT 1", "SELECT 2"]
    assert split_statements("  \n-- nothing\n") == []


def test_queries_are_told_from_commands():
    from server.sqlscript import returns_rows

    assert returns_rows("-- c\nSELECT 1")
    assert returns_rows("WITH a AS (SELECT 1) SELECT * FROM a")
    assert not returns_rows("CREATE VIEW v AS SELECT 1")
