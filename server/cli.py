"""``emoticana``: serve the SQL endpoint, run SQL scripts against it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from server.auth import DEFAULT_ITERATIONS
from server.settings import DEFAULT_HOST, load_settings
from udfs.errors import EmoticanaError


def _serve(args: argparse.Namespace) -> int:
    from server.app import EmoticanaServer, StartupStopped

    settings = load_settings(
        port=args.port,
        host=args.host,
        home=args.home,
        master=args.master,
        audio_roots=args.audio_roots,
        conf_dir=args.conf_dir,
        conf=args.conf,
        strict=True if args.strict else None,
        console_port=args.console_port,
        auth_file=args.auth_file,
        tls_keystore=args.tls_keystore,
        metastore_url=args.metastore_url,
        warehouse=args.warehouse,
        models_dir=args.models_dir,
        sql_sandbox=None if args.sql_sandbox is None else args.sql_sandbox == "on",
        admins=args.admins,
    )
    stop = threading.Event()
    received: list[int] = []
    server = EmoticanaServer(settings, stop_requested=stop)

    def request_stop(signum, _frame):
        received.append(signum)
        server.request_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        try:
            server.start()
        except StartupStopped:
            name = signal.Signals(received[0]).name
            print(f"emoticana: stopping on {name} during start-up", file=sys.stderr, flush=True)
            return 128 + received[0]
        if server.console is not None:
            print(f"Emoticana console: {server.console.url}", flush=True)
        print(f"Emoticana ready: {settings.jdbc_url}", flush=True)
        while not stop.is_set():
            if not server.alive():
                print(
                    "emoticana: error: the Spark JVM exited; stopping", file=sys.stderr, flush=True
                )
                return 1
            stop.wait(1.0)
        print("Emoticana stopping", flush=True)
    finally:
        server.stop()
    return 0


def _run_sql(args: argparse.Namespace) -> int:
    from server.sqlscript import read_script, returns_rows, script_variables
    from server.thrift import client_options, connect, server_message

    settings = load_settings(port=args.port, host=args.host)
    host, port = settings.host, settings.port
    try:
        statements = read_script(args.file)
    except OSError as exc:
        raise EmoticanaError(f"cannot read script {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise EmoticanaError(f"script {args.file} is not UTF-8 text") from None
    given = {}
    for pair in args.hivevar or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise EmoticanaError(f"--hivevar expects NAME=VALUE, got {pair!r}")
        given[name] = value
    # Checked before connecting: a script must not half-run (00_clips.sql would drop its table).
    missing = [name for name in script_variables(statements) if not given.get(name, "").strip()]
    if missing:
        flags = " ".join(f"--hivevar {name}=VALUE" for name in missing)
        raise EmoticanaError(f"{args.file} needs {flags}; nothing was run")
    variables = {f"set:hivevar:{name}": value for name, value in given.items()}
    try:
        connection = connect(host, port, configuration=variables or None, **client_options())
    except Exception as exc:
        raise EmoticanaError(f"cannot connect to {host}:{port}: {server_message(exc)}") from None
    try:
        cursor = connection.cursor()
        for number, statement in enumerate(statements, start=1):
            started = time.monotonic()
            try:
                cursor.execute(statement)
            except Exception as exc:
                raise EmoticanaError(
                    f"{args.file} statement {number} failed: {server_message(exc)}"
                ) from None
            rows = cursor.fetchall() if cursor.description else []
            if cursor.description and (rows or returns_rows(statement)):
                print("\t".join(column[0] for column in cursor.description))
                for row in rows:
                    print("\t".join("NULL" if value is None else str(value) for value in row))
            print(f"-- {len(rows)} row(s), {time.monotonic() - started:.2f}s", file=sys.stderr)
    finally:
        connection.close()
    return 0


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.trainer import TrainOptions, caused_by_interrupt, run_training

    settings = load_settings(
        port=args.port, host=args.host, home=args.home, master=args.master, conf=args.conf
    )
    options = TrainOptions(
        name=args.name,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        selection=args.selection,
        inference_warps=warp_factors(args.inference_warps),
        class_priors=args.class_priors,
        validation_speakers=_speakers(args.validation_speakers),
        nodes=args.nodes,
        cv_by=args.cv_by,
        keep_features=args.keep_features,
        features_table=args.features_table,
        voice_head_for=args.voice_head_for,
        encoder_head_for=args.encoder_head_for,
        encoder_head=args.encoder_head,
        temporal_head=args.temporal_head,
        seed=args.seed,
        hyperparams=dict(hyperparam_pair(pair) for pair in args.hyperparam or []),
    )
    models_dir = Path(args.models_dir) if args.models_dir else settings.models_dir

    received = []

    table_fate = "keeping" if options.keeps_features else "dropping"

    def stop(signum, _frame):
        # Unwind like Ctrl-C: the trainer cancels the feed, stops its Spark application, discards
        # the staged model and drops the features table on the server (unless it was asked to
        # keep it).  A second signal kills at once.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        received.append(signum)
        print(
            f"emoticana: stopping on {signal.Signals(signum).name}: {table_fate} the features "
            "table, discarding the unfinished model",
            file=sys.stderr,
            flush=True,
        )
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        run_training(
            settings,
            args.view,
            options,
            models_dir=models_dir,
            cv_folds=args.cv_folds,
            audio_column=args.audio_column,
            label_column=args.label_column,
            speaker_column=args.speaker_column,
        )
    except KeyboardInterrupt:
        return 128 + (received[0] if received else signal.SIGINT)
    except Exception as exc:
        # The interrupt can land inside a py4j call, which turns it into its own network error,
        # and the trainer then reports a failed run: it was the stop all the same.
        if caused_by_interrupt(exc):
            return 128 + (received[0] if received else signal.SIGINT)
        raise
    return 0


def _speakers(text: str | None) -> list[str] | None:
    """``--validation-speakers``: None (the trainer chooses), ``none`` (no validation) or a
    comma-separated list."""
    if text is None:
        return None
    return [] if text.strip().lower() == "none" else text.split(",")


def warp_factors(text: str | None) -> tuple[float, ...] | None:
    """``--inference-warps``: None (the recipe's), ``none`` (no averaging) or comma-separated
    factors."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise EmoticanaError(
            "--inference-warps takes comma-separated numbers such as 0.94,1.06 or 'none', got "
            f"{text!r}"
        ) from None


def _passwd(args: argparse.Namespace) -> int:
    import getpass
    import os
    from pathlib import Path

    from server.auth import delete_user, set_password
    from server.settings import ENV_AUTH_FILE

    location = args.auth_file or os.environ.get(ENV_AUTH_FILE)
    if not location:
        raise EmoticanaError(f"which password file? give --auth-file PATH or set {ENV_AUTH_FILE}")
    path = Path(location).expanduser().absolute()
    if args.delete:
        delete_user(path, args.user)
        print(f"removed {args.user} from {path}", file=sys.stderr)
        return 0
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise EmoticanaError("the two passwords differ")
    else:  # scripts pipe it in: the first line of stdin, never an argument that ps would show
        password = sys.stdin.readline().rstrip("\r\n")
    set_password(path, args.user, password, iterations=args.iterations)
    print(f"set the password of {args.user} in {path}", file=sys.stderr)
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from server.cluster import run_cluster

    return run_cluster(
        workers=args.workers,
        cores=args.cores,
        memory=args.memory,
        host=args.host,
        port=args.port,
        webui_port=args.webui_port,
        state_dir=args.state_dir,
    )


def hyperparam_pair(pair: str):
    import json

    key, sep, value = pair.partition("=")
    if not sep:
        raise EmoticanaError(f"--hyperparam expects NAME=JSON_VALUE, got {pair!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoticana", description="Speech-emotion SQL server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the Thrift/JDBC server")
    serve.add_argument("--port", type=int, help="JDBC port (env EMOTICANA_PORT, default 10000)")
    serve.add_argument("--host", help="bind address (env EMOTICANA_HOST, default 127.0.0.1)")
    serve.add_argument("--home", help="state directory (env EMOTICANA_HOME, default ./.emoticana)")
    serve.add_argument("--master", help="Spark master URL (env EMOTICANA_MASTER, default local[*])")
    serve.add_argument(
        "--audio-roots",
        help="colon-separated directories UDFs may read by path (env EMOTICANA_AUDIO_ROOTS)",
    )
    serve.add_argument(
        "--conf-dir", help="directory with spark-defaults.conf, hive-site.xml, log4j2.properties"
    )
    serve.add_argument(
        "--conf", action="append", metavar="KEY=VALUE", help="extra Spark setting (repeatable)"
    )
    serve.add_argument(
        "--console-port",
        type=int,
        help="browser console port (env EMOTICANA_CONSOLE_PORT, default 10080; 0: off)",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="a bad row fails the query, naming it, instead of NULL (env EMOTICANA_STRICT)",
    )
    serve.add_argument(
        "--auth-file",
        help="password file (emoticana passwd); turns on password authentication (env "
        "EMOTICANA_AUTH_FILE)",
    )
    serve.add_argument(
        "--admins",
        metavar="USER,USER",
        help="with --auth-file: users who may change any table or view and switch the model "
        "with activate_model (env EMOTICANA_ADMINS)",
    )
    serve.add_argument(
        "--tls-keystore",
        help="JKS/PKCS12 keystore; turns on TLS on the JDBC port (env EMOTICANA_TLS_KEYSTORE; "
        "password from env EMOTICANA_TLS_KEYSTORE_PASSWORD)",
    )
    serve.add_argument(
        "--metastore-url",
        help="shared catalog: jdbc:postgresql://HOST:PORT/DB (env EMOTICANA_METASTORE_URL; "
        "password from env EMOTICANA_METASTORE_PASSWORD; default: Derby under --home)",
    )
    serve.add_argument(
        "--warehouse",
        help="warehouse directory, any Hadoop path (env EMOTICANA_WAREHOUSE, default "
        "HOME/warehouse)",
    )
    serve.add_argument(
        "--models-dir",
        help="trained models and the active one (env EMOTICANA_MODELS_DIR, default HOME/models)",
    )
    serve.add_argument(
        "--sql-sandbox",
        choices=("on", "off"),
        help="refuse SQL that reaches server files, programs or code (env EMOTICANA_SQL_SANDBOX, "
        "default on)",
    )
    serve.set_defaults(run=_serve)

    passwd = commands.add_parser(
        "passwd", help="add a user to the password file or change their password"
    )
    passwd.add_argument("user")
    passwd.add_argument("--auth-file", help="password file (env EMOTICANA_AUTH_FILE)")
    passwd.add_argument("--delete", action="store_true", help="remove the user instead")
    passwd.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS}); each login costs this much once",
    )
    passwd.set_defaults(run=_passwd)

    sql = commands.add_parser("sql", help="run a .sql file against a running server")
    sql.add_argument("file", help="script; statements are split with sqlparse")
    sql.add_argument("--host", help=f"server address (env EMOTICANA_HOST, default {DEFAULT_HOST})")
    sql.add_argument("--port", type=int, help="JDBC port (env EMOTICANA_PORT, default 10000)")
    sql.add_argument(
        "--hivevar", action="append", metavar="NAME=VALUE", help="value for ${hivevar:NAME}"
    )
    sql.set_defaults(run=_run_sql)

    train = commands.add_parser(
        "train", help="train the emotion model with TensorFlowOnSpark from a SQL view"
    )
    train.add_argument(
        "--view",
        required=True,
        help="training view: an audio column (content/audio/path), label, speaker",
    )
    train.add_argument("--name", default="emoticana", help="model name (default emoticana)")
    train.add_argument(
        "--models-dir",
        help="where versions are written (env EMOTICANA_MODELS_DIR, default "
        "$EMOTICANA_HOME/models)",
    )
    train.add_argument("--epochs", type=int, help="most epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument(
        "--patience", type=int, help="stop after this many epochs without a better validation UA"
    )
    train.add_argument(
        "--selection",
        help="weights kept: 'best' (the best validation epoch, early stopping) or 'last' (the "
        "last epoch); default: the recipe's (training.recipe.SELECTION)",
    )
    train.add_argument(
        "--inference-warps",
        metavar="F1,F2,...",
        help="the saved model averages its output over the input and these vocal-tract warps of "
        "it, e.g. 0.94,1.06; 'none': no averaging; default: none "
        "(training.recipe.INFERENCE_WARPS)",
    )
    train.add_argument(
        "--class-priors",
        help="class priors the saved model's probabilities assume: 'balanced' (the training set's "
        "class frequencies divided out, so emotion() maximises unweighted accuracy) or "
        "'training'; default: the recipe's (training.recipe.CLASS_PRIORS)",
    )
    train.add_argument(
        "--validation-speakers",
        help="comma-separated speakers to validate on (default: 15%% of them); 'none': train on "
        "every speaker (needs --selection last, and --cv-folds)",
    )
    train.add_argument(
        "--cv-folds",
        type=int,
        default=0,
        help="first estimate accuracy by speaker-level cross-validation",
    )
    train.add_argument(
        "--keep-features",
        action="store_true",
        help="keep the features table on the server and print its name, for --features-table",
    )
    train.add_argument(
        "--features-table",
        metavar="TABLE",
        help="train from the features a run with --keep-features kept (same view), instead of "
        "computing them again; the table is kept",
    )
    train.add_argument(
        "--voice-head-for",
        metavar="MODEL",
        help="train no network: publish MODEL ('name/version', trained on this view) again as "
        "the next version of its name, with a voice head trained on the view's features",
    )
    train.add_argument(
        "--encoder-head-for",
        metavar="MODEL",
        help="train no network: publish MODEL ('name/version', trained on this view, with "
        "cross-validation predictions) again as the next version of its name, its network fused "
        "with a head on the pretrained speech encoder's states",
    )
    train.add_argument(
        "--encoder-head",
        action="store_true",
        help="after the network is published, publish it again as the next version fused with "
        "a head on the pretrained speech encoder's states (--encoder-head-for in the same run; "
        "needs cross-validation)",
    )
    train.add_argument(
        "--temporal-head",
        action="store_true",
        help="with --encoder-head or --encoder-head-for: a second head beside it on every "
        "frame's encoder states, how they move over the clip (about 5 min more per fold)",
    )
    train.add_argument(
        "--cv-by",
        default="speaker",
        help="'speaker' (--cv-folds K groups of speakers), 'corpus' (leave one corpus out, each "
        "corpus of the view's corpus column in turn; no --cv-folds) or 'corpus,speaker': both, "
        "the corpora left out first (they fit the temperature)",
    )
    train.add_argument(
        "--nodes", type=int, default=1, help="TensorFlowOnSpark nodes, one per executor"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--hyperparam",
        action="append",
        metavar="NAME=VALUE",
        help="override a model hyper-parameter",
    )
    train.add_argument("--audio-column")
    train.add_argument("--label-column", default="label")
    train.add_argument("--speaker-column", default="speaker")
    train.add_argument("--host", help="server address (env EMOTICANA_HOST, default 127.0.0.1)")
    train.add_argument(
        "--port", type=int, help="server JDBC port (env EMOTICANA_PORT, default 10000)"
    )
    train.add_argument("--home", help="state directory (env EMOTICANA_HOME)")
    train.add_argument(
        "--master", help="Spark master of the training application (env EMOTICANA_MASTER)"
    )
    train.add_argument("--conf", action="append", metavar="KEY=VALUE")
    train.set_defaults(run=_train)

    cluster = commands.add_parser(
        "cluster", help="run a Spark standalone master and workers on this machine"
    )
    cluster.add_argument("--workers", type=int, default=2, help="number of workers (default 2)")
    cluster.add_argument("--cores", type=int, default=1, help="cores per worker (default 1)")
    cluster.add_argument("--memory", default="2g", help="executor memory per worker (default 2g)")
    cluster.add_argument(
        "--host", default=DEFAULT_HOST, help="address of every daemon (default 127.0.0.1)"
    )
    cluster.add_argument("--port", type=int, help="master port (default: a free one)")
    cluster.add_argument("--webui-port", type=int, help="master web UI port (default: a free one)")
    cluster.add_argument(
        "--state-dir",
        help="work and log directories (default: a temporary directory, removed at exit)",
    )
    cluster.set_defaults(run=_cluster)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except EmoticanaError as exc:
        print(f"emoticana: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
