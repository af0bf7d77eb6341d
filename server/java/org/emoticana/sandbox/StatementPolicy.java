package org.emoticana.sandbox;

import java.net.URI;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.UnresolvedFunction;
import org.apache.spark.sql.catalyst.analysis.UnresolvedPartitionSpec;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.CheckConstraint;
import org.apache.spark.sql.catalyst.expressions.CurrentDate;
import org.apache.spark.sql.catalyst.expressions.CurrentTimestamp;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.LocalTimestamp;
import org.apache.spark.sql.catalyst.expressions.Now;
import org.apache.spark.sql.catalyst.expressions.UnaryMinus;
import org.apache.spark.sql.catalyst.plans.logical.AddPartitions;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.CreateNamespace;
import org.apache.spark.sql.catalyst.plans.logical.CreateTableLike;
import org.apache.spark.sql.catalyst.plans.logical.CreateView;
import org.apache.spark.sql.catalyst.plans.logical.DefaultValueExpression;
import org.apache.spark.sql.catalyst.plans.logical.GeneratedColumnExpression;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.OptionList;
import org.apache.spark.sql.catalyst.plans.logical.SerdeInfo;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceProperties;
import org.apache.spark.sql.catalyst.plans.logical.SetTableLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetTableProperties;
import org.apache.spark.sql.catalyst.plans.logical.SetViewProperties;
import org.apache.spark.sql.catalyst.plans.logical.UnresolvedTableSpec;
import org.apache.spark.sql.catalyst.plans.logical.UnsetTableProperties;
import org.apache.spark.sql.catalyst.plans.logical.UnsetViewProperties;
import org.apache.spark.sql.execution.command.CreateViewCommand;
import org.apache.spark.sql.execution.command.SetCommand;
import org.apache.spark.sql.execution.datasources.CreateTempViewUsing;

import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The sandbox's allow-list, applied to each statement as parsed, before Spark analyses it (so
 * before any catalog, metastore or file-system call): which statements SQL may run, which data
 * sources and Hive formats a table may use, which options and properties they may take, and which
 * settings a session may change. Everything not listed is refused with one line naming the rule.
 *
 * <p>Where a path is named it must be a plain path: Hadoop expands glob and escape characters
 * ({@code * ? [ ] { } \}) after any check on the string, so they are refused; file names are
 * filtered with the {@code pathGlobFilter} option instead, which matches names only. Whether a
 * plain path lies inside the roots is checked on the analysed plan ({@link SqlSandbox}), where
 * stored tables and views are seen too.
 */
final class StatementPolicy {

    /** Commands SQL may run, by the class the parser makes of them. Queries and INSERT are not commands. */
    static final Set<String> COMMANDS = Set.of(
            // Tables and views: create, replace, alter, drop, describe, refresh.
            "CreateTable", "CreateTableAsSelect", "ReplaceTable", "ReplaceTableAsSelect", "CreateTableLike",
            "CreateView", "CreateViewCommand", "CreateTempViewUsing", "AlterViewAs", "AlterViewSchemaBinding",
            "DropTable", "DropView", "RenameTable", "TruncateTable", "TruncatePartition",
            "AddColumns", "AlterColumns", "DropColumns", "RenameColumn", "ReplaceColumns",
            "AddPartitions", "DropPartitions", "RenamePartitions", "RecoverPartitions", "RepairTable",
            "SetTableLocation", "SetTableProperties", "UnsetTableProperties", "SetViewProperties",
            "UnsetViewProperties", "CommentOnTable", "AnalyzeTable", "AnalyzeColumn",
            "RefreshTable", "DescribeRelation", "DescribeColumn", "DescribeTablePartition",
            "ShowTables", "ShowTablesExtended", "ShowTablePartition", "ShowViews", "ShowColumns",
            "ShowCreateTable", "ShowTableProperties", "ShowPartitions",
            // Databases.
            "CreateNamespace", "DropNamespace", "SetNamespaceProperties", "SetNamespaceLocation",
            "CommentOnNamespace", "DescribeNamespace", "ShowNamespacesCommand", "SetCatalogAndNamespace",
            "ShowCurrentNamespaceCommand", "ShowCatalogsCommand",
            // SQL functions (a body in SQL, not a class), variables, settings, caching, EXPLAIN.
            "CreateUserDefinedFunction", "CreateSQLFunctionCommand", "DropFunction", "DropFunctionCommand",
            "RefreshFunction", "DescribeFunction", "ShowFunctions",
            "CreateVariable", "DropVariable", "SetVariable", "SetCommand", "ResetCommand",
            "CacheTable", "CacheTableAsSelect", "UncacheTable", "ClearCacheCommand$", "ExplainCommand",
            "DescribeQueryCommand", "ShowCollationsCommand",
            // EXECUTE IMMEDIATE: the statement it runs is parsed here too.
            "UnresolvedExecuteImmediate");

    /** Data sources a table or temporary view may use; {@code hive} for {@code STORED AS} tables. */
    static final Set<String> SOURCES = Set.of("binaryfile", "csv", "json", "parquet", "orc", "text", "hive");

    /** Hive formats a table may be {@code STORED AS}: none of them takes a class name or a file from SQL. */
    static final Set<String> HIVE_FORMATS = Set.of("textfile", "parquet", "orc");

    /** Options of the file sources above, in lower case: none names a Hadoop setting or a class. */
    static final Set<String> OPTIONS = Set.of(
            // Every file source.
            "path", "paths", "pathglobfilter", "recursivefilelookup", "modifiedbefore", "modifiedafter",
            "ignorecorruptfiles", "ignoremissingfiles", "mergeschema", "compression", "basepath", "timezone",
            "encoding", "charset", "linesep", "multiline", "mode", "columnnameofcorruptrecord", "locale",
            "dateformat", "timestampformat", "timestampntzformat", "samplingratio",
            "enabledatetimeparsingfallback", "datetimerebasemode", "int96rebasemode",
            // csv
            "header", "sep", "delimiter", "quote", "escape", "chartoescapequoteescaping", "comment",
            "inferschema", "ignoreleadingwhitespace", "ignoretrailingwhitespace", "nullvalue", "nanvalue",
            "positiveinf", "negativeinf", "maxcolumns", "maxcharspercolumn", "emptyvalue",
            "unescapedquotehandling", "enforceschema", "preferdate", "quoteall", "escapequotes",
            // json
            "primitivesasstring", "prefersdecimal", "allowcomments", "allowunquotedfieldnames",
            "allowsinglequotes", "allownumericleadingzeros", "allownonnumericnumbers",
            "allowbackslashescapingallcharacter", "allowunquotedcontrolchars", "dropfieldifallnull",
            "ignorenullfields", "infertimestamp", "prefertimestampntz",
            // text
            "wholetext");

    /**
     * Values of the {@code compression} option, in lower case: the file sources' short codec names.
     * The text sources would also take a Hadoop codec's class name and load that class.
     */
    static final Set<String> CODECS = Set.of(
            "none", "uncompressed", "snappy", "gzip", "zlib", "lzo", "lz4", "lz4_raw", "zstd", "brotli", "bzip2",
            "deflate");

    /** Table and Hive SerDe properties SQL may set, in lower case. */
    static final Set<String> PROPERTIES = Set.of(
            "comment", "skip.header.line.count", "skip.footer.line.count", "serialization.null.format",
            "serialization.format", "field.delim", "line.delim", "escape.delim", "colelction.delim",
            "collection.delim", "mapkey.delim", "parquet.compression", "orc.compress", "transient_lastddltime");

    /** Properties of a database SQL may set (its location is checked against the warehouse). */
    static final Set<String> DATABASE_PROPERTIES = Set.of("comment", "location", "owner");

    /** Functions of no argument a column's DEFAULT may call, in lower case. */
    static final Set<String> DEFAULT_FUNCTIONS = Set.of(
            "current_date", "curdate", "current_timestamp", "now", "localtimestamp");

    /** Characters Hadoop's glob expansion gives a meaning to. */
    private static final String GLOB = "*?[]{}\\";

    private static final String SANDBOX = " (SQL sandbox)";


    private final SparkSession session;
    /** The warehouse, whose folders SQL never names (parsed once per session). */
    private final AllowedRoots warehouse;
    private final URI defaultFs;

    StatementPolicy(SparkSession session) {
        this.session = session;
        SparkConf conf = session.sparkContext().getConf();
        this.defaultFs = FileSystem.getDefaultUri(session.sparkContext().hadoopConfiguration());
        this.warehouse = conf.contains(SqlSandbox.KEY_WRITE_ROOTS)
                ? AllowedRoots.parse(conf.get(SqlSandbox.KEY_WRITE_ROOTS), defaultFs) : null;
    }

    /** Refuses the parsed statement unless every part of it is allowed. */
    LogicalPlan check(LogicalPlan plan) {
        SqlSandbox.checkSessionSettings(session);
        new Walk().plan(plan);
        return plan;
    }

    private final class Walk extends PlanWalk {
        /**
         * A path SQL names: plain (no glob), and not inside the warehouse, whose folders belong to
         * managed tables: a table, view, partition or database named onto one could read or
         * overwrite another user's table behind its owner's back. SQL names folders in the audio
         * roots; the warehouse is reached through managed tables only.
         */
        void path(String what, String path) {
            plainPath(what, path);
            absolutePath(what, path);
            boolean inside;
            try {
                inside = warehouse != null && warehouse.contains(new org.apache.hadoop.fs.Path(path), defaultFs);
            } catch (IllegalArgumentException e) {
                return;  // judged, with its reason, on the analysed plan
            }
            if (inside) {
                throw SqlSandbox.refusal(what + " '" + path + "' is refused: it lies in the warehouse ("
                        + warehouse.display() + "), whose folders belong to managed tables; leave out LOCATION "
                        + "(the table is then managed) or name a folder in the audio roots" + SANDBOX);
            }
        }

        @Override
        void visit(Expression expression) {
            if (expression instanceof DefaultValueExpression) {
                DefaultValueExpression value = (DefaultValueExpression) expression;
                if (!constant(value.child())) {
                    throw SqlSandbox.refusal("DEFAULT " + value.originalSQL() + " is refused: a column's default may "
                            + "be a literal (a number, a string, NULL, -literal, CAST(literal AS type)) or "
                            + String.join("(), ", new java.util.TreeSet<>(DEFAULT_FUNCTIONS)) + "(); Spark evaluates "
                            + "it when the table is created, outside the checks every query passes" + SANDBOX);
                }
            } else if (expression instanceof GeneratedColumnExpression) {
                throw SqlSandbox.refusal("GENERATED ALWAYS AS (expression) is refused: Spark evaluates a generated "
                        + "column's expression when the table is created, outside the checks every query passes; "
                        + "compute it in a view instead" + SANDBOX);
            } else if (expression instanceof CheckConstraint) {
                throw SqlSandbox.refusal("CHECK constraints are refused: Spark evaluates a constraint's expression "
                        + "outside the checks every query passes; filter in a view instead" + SANDBOX);
            } else if (expression instanceof UnresolvedTableSpec) {
                tableSpec((UnresolvedTableSpec) expression);
            } else if (expression instanceof UnresolvedPartitionSpec) {
                Option<String> location = ((UnresolvedPartitionSpec) expression).location();
                if (location.isDefined()) {
                    path("partition location", location.get());
                }
            }
        }

        @Override
        boolean visitValue(Object value, int depth) {
            if (value instanceof SerdeInfo) {
                serde((SerdeInfo) value);
                return true;
            }
            return false;
        }

        @Override
        void visit(LogicalPlan node) {
            String name = node.getClass().getSimpleName();
            String refused = REFUSED.get(name);
            if (refused != null) {
                throw SqlSandbox.refusal(refused + SANDBOX);
            }
            if (node instanceof Command && !COMMANDS.contains(name)) {
                throw SqlSandbox.refusal(commandName(name) + " is refused: it is not among the statements SQL may run"
                        + " on this server (docs/security.md)" + SANDBOX);
            }
            if (name.startsWith("Show")) {
                showPattern(node, name);
            }
            if (node instanceof SetCommand) {
                Option<Tuple2<String, Option<String>>> kv = ((SetCommand) node).kv();
                if (kv.isDefined() && kv.get()._2().isDefined()) {
                    String reason = kv.get()._2().get().contains("${")
                            ? "a value may not contain ${: Spark fills in ${...} from the server's environment "
                                    + "and settings when it reads a setting"
                            : SqlSandbox.settingRefusal(kv.get()._1());
                    if (reason != null) {
                        throw SqlSandbox.refusal("SET " + kv.get()._1().trim() + " is refused: " + reason + SANDBOX);
                    }
                }
            } else if (node instanceof CreateViewCommand) {
                if (((CreateViewCommand) node).viewType().toString().equals("GlobalTempView")) {
                    throw SqlSandbox.refusal("CREATE GLOBAL TEMPORARY VIEW is refused: global temporary views are "
                            + "shared by every user's session; use CREATE TEMPORARY VIEW (this session) or "
                            + "CREATE VIEW" + SANDBOX);
                }
            } else if (node instanceof CreateTempViewUsing) {
                CreateTempViewUsing view = (CreateTempViewUsing) node;
                if (view.global()) {
                    throw SqlSandbox.refusal("CREATE GLOBAL TEMPORARY VIEW is refused: global temporary views are "
                            + "shared by every user's session" + SANDBOX);
                }
                source(view.provider());
                options(CollectionConverters.asJava(view.options()));
            } else if (node instanceof CreateTableLike) {
                CreateTableLike like = (CreateTableLike) node;
                if (like.provider().isDefined()) {
                    source(like.provider().get());
                }
                if (like.location().isDefined()) {
                    path("table location", like.location().get());
                }
                if (like.serdeInfo().isDefined()) {
                    serde(like.serdeInfo().get());
                }
                properties("table property", CollectionConverters.asJava(like.properties()), PROPERTIES);
            } else if (node instanceof SetTableProperties) {
                properties("table property", CollectionConverters.asJava(((SetTableProperties) node).properties()),
                        PROPERTIES);
            } else if (node instanceof CreateView) {
                ownerProperty(CollectionConverters.asJava(((CreateView) node).properties().keys().toSeq()));
            } else if (node instanceof SetViewProperties) {
                ownerProperty(CollectionConverters.asJava(((SetViewProperties) node).properties().keys().toSeq()));
            } else if (node instanceof UnsetTableProperties) {
                ownerProperty(CollectionConverters.asJava(((UnsetTableProperties) node).propertyKeys()));
            } else if (node instanceof UnsetViewProperties) {
                ownerProperty(CollectionConverters.asJava(((UnsetViewProperties) node).propertyKeys()));
            } else if (node instanceof SetTableLocation) {
                path("table location", ((SetTableLocation) node).location());
            } else if (node instanceof AddPartitions) {
                return;  // partition specs are walked as fields
            } else if (node instanceof CreateNamespace) {
                databaseProperties(((CreateNamespace) node).properties());
            } else if (node instanceof SetNamespaceProperties) {
                databaseProperties(((SetNamespaceProperties) node).properties());
            } else if (node instanceof SetNamespaceLocation) {
                path("database location", ((SetNamespaceLocation) node).location());
            }
        }

        /**
         * An expression Spark may fold without anything in it reaching a file, a URL or Java: literals,
         * their sign and casts, and the clock.
         */
        boolean constant(Expression expression) {
            if (expression instanceof Literal || expression instanceof CurrentDate
                    || expression instanceof CurrentTimestamp || expression instanceof LocalTimestamp
                    || expression instanceof Now) {
                return true;
            }
            if (expression instanceof UnresolvedFunction) {
                UnresolvedFunction function = (UnresolvedFunction) expression;
                java.util.List<String> parts = CollectionConverters.asJava(function.nameParts());
                return parts.size() == 1 && function.arguments().isEmpty()
                        && DEFAULT_FUNCTIONS.contains(parts.get(0).toLowerCase(Locale.ROOT));
            }
            if (expression instanceof UnaryMinus || expression instanceof Cast) {
                return constant(expression.children().head());
            }
            return false;
        }

        /**
         * The owner's property is the server's to set (Owners), never SQL's to set or remove. A view's
         * other properties are free: they configure nothing.
         */
        void ownerProperty(java.util.List<String> keys) {
            for (String key : keys) {
                if (key.trim().equalsIgnoreCase(Owners.PROPERTY)) {
                    throw SqlSandbox.refusal("table property '" + key + "' is refused: the server records a table's "
                            + "or view's owner itself" + SANDBOX);
                }
            }
        }

        void databaseProperties(scala.collection.immutable.Map<String, String> properties) {
            Map<String, String> map = CollectionConverters.asJava(properties);
            properties("database property", map, DATABASE_PROPERTIES);
            if (map.containsKey("location")) {
                path("database location", map.get("location"));
            }
        }

        void tableSpec(UnresolvedTableSpec spec) {
            if (spec.serde().isDefined()) {
                serde(spec.serde().get());
            }
            if (spec.provider().isDefined()) {
                source(spec.provider().get());
            }
            if (spec.location().isDefined()) {
                path("table location", spec.location().get());
            }
            properties("table property", CollectionConverters.asJava(spec.properties()), PROPERTIES);
            OptionList options = spec.optionExpression();
            for (Tuple2<String, Expression> option : CollectionConverters.asJava(options.options())) {
                option(option._1(), option._2() instanceof Literal ? String.valueOf(((Literal) option._2()).value()) : null);
            }
        }

        void serde(SerdeInfo serde) {
            if (serde.formatClasses().isDefined() || serde.serde().isDefined()) {
                throw SqlSandbox.refusal("ROW FORMAT SERDE and STORED AS INPUTFORMAT/OUTPUTFORMAT are refused: "
                        + "they load the classes SQL names; use STORED AS "
                        + String.join(", ", HIVE_FORMATS).toUpperCase(Locale.ROOT) + " or USING a data source"
                        + SANDBOX);
            }
            if (serde.storedAs().isDefined()
                    && !HIVE_FORMATS.contains(serde.storedAs().get().toLowerCase(Locale.ROOT))) {
                throw SqlSandbox.refusal("STORED AS " + serde.storedAs().get() + " is refused: tables may be STORED AS "
                        + String.join(", ", HIVE_FORMATS).toUpperCase(Locale.ROOT) + SANDBOX);
            }
            properties("SerDe property", CollectionConverters.asJava(serde.serdeProperties()), PROPERTIES);
        }

        <V> void options(Map<String, V> options) {
            for (Map.Entry<String, V> entry : options.entrySet()) {
                option(entry.getKey(), entry.getValue() == null ? null : String.valueOf(entry.getValue()));
            }
        }

        void option(String key, String value) {
            String lower = key.toLowerCase(Locale.ROOT);
            if (!OPTIONS.contains(lower)) {
                throw SqlSandbox.refusal("option '" + key + "' is refused: a table or view may take only the "
                        + "documented options of its file source (path, pathGlobFilter, recursiveFileLookup, header, "
                        + "sep, ...), never a Hadoop setting or a class (docs/security.md)" + SANDBOX);
            }
            if (lower.equals("compression") && value != null
                    && !CODECS.contains(value.trim().toLowerCase(Locale.ROOT))) {
                throw SqlSandbox.refusal("option compression '" + value + "' is refused: name a codec ("
                        + String.join(", ", new java.util.TreeSet<>(CODECS)) + "), not a class" + SANDBOX);
            }
            if ((lower.equals("path") || lower.equals("basepath")) && value != null) {
                path("option " + key, value);
            } else if (lower.equals("paths") && value != null) {
                for (String path : SqlSandbox.paths(lower, value)) {
                    path("option paths", path);
                }
            }
        }
    }

    private static final String CREATE_FUNCTION = "CREATE [TEMPORARY] FUNCTION ... AS 'class' is refused: it loads "
            + "Java code into the server; SQL functions (CREATE FUNCTION ... RETURN expression) are allowed";

    /** Statements refused whatever their arguments, with the reason. */
    /**
     * A {@code SHOW TABLES|VIEWS|FUNCTIONS|DATABASES|CATALOGS ... LIKE} pattern ({@link NamePatterns}):
     * the commands that take one hold it as {@code pattern}, an optional or a plain string.
     */
    static void showPattern(LogicalPlan node, String name) {
        Object pattern;
        try {
            pattern = node.getClass().getMethod("pattern").invoke(node);
        } catch (NoSuchMethodException e) {
            return;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("emoticana: cannot read the pattern of " + name, e);
        }
        if (pattern instanceof Option<?> optional) {
            pattern = optional.isDefined() ? optional.get() : null;
        }
        String reason = pattern instanceof String text ? NamePatterns.refusal("LIKE", text, true) : null;
        if (reason != null) {
            throw SqlSandbox.refusal(commandName(name) + " is refused: " + reason + SANDBOX);
        }
    }

    private static final Map<String, String> REFUSED = Map.ofEntries(
            Map.entry("InsertIntoDir", "INSERT OVERWRITE DIRECTORY is refused: it writes files on the server"),
            Map.entry("LoadData", "LOAD DATA is refused: it copies or moves server files into a table; "
                    + "create a table over a folder inside the audio roots instead"),
            Map.entry("AddJarsCommand", "ADD JAR/FILE/ARCHIVE is refused: it loads server files or code into the server"),
            Map.entry("AddFilesCommand", "ADD JAR/FILE/ARCHIVE is refused: it loads server files or code into the server"),
            Map.entry("AddArchivesCommand", "ADD JAR/FILE/ARCHIVE is refused: it loads server files or code into the server"),
            Map.entry("ScriptTransformation", "TRANSFORM ... USING is refused: it runs a program on the server"),
            Map.entry("CreateFunction", CREATE_FUNCTION),
            Map.entry("CreateFunctionCommand", CREATE_FUNCTION),
            Map.entry("SetTableSerDeProperties", "ALTER TABLE ... SET SERDEPROPERTIES is refused: "
                    + "SerDe properties are set when the table is created"));

    /** ``SetTableSerDeProperties`` as ``SET TABLE SERDE PROPERTIES``: a statement's class name in words. */
    static String commandName(String className) {
        String name = className.replace("$", "").replaceAll("(Command|Statement)$", "");
        return name.replaceAll("([a-z])([A-Z])", "$1 $2").toUpperCase(Locale.ROOT);
    }

    static void source(String provider) {
        if (provider == null || SOURCES.contains(provider.toLowerCase(Locale.ROOT))) {
            return;
        }
        throw SqlSandbox.refusal("data source '" + provider + "' is refused: tables and views may use "
                + "binaryFile, csv, json, parquet, orc, text (folders inside the audio roots) or a Hive format"
                + SANDBOX);
    }

    static void properties(String what, Map<String, String> properties, Set<String> allowed) {
        for (String key : properties.keySet()) {
            if (!allowed.contains(key.toLowerCase(Locale.ROOT))) {
                throw SqlSandbox.refusal(what + " '" + key + "' is refused: SQL may set only "
                        + String.join(", ", new java.util.TreeSet<>(allowed)) + SANDBOX);
            }
        }
    }

    /**
     * An absolute path (or URI): Spark resolves a relative one against a folder of its choosing (a
     * partition's against its table's), not the one the checks would judge.
     */
    static void absolutePath(String what, String path) {
        String local;
        try {
            local = new org.apache.hadoop.fs.Path(path).toUri().getPath();
        } catch (IllegalArgumentException e) {
            return;  // judged, with its reason, on the analysed plan
        }
        if (local == null || !local.startsWith("/")) {
            throw SqlSandbox.refusal(what + " '" + path + "' is refused: name an absolute path (a relative one "
                    + "is resolved against a folder the server picks, not yours)" + SANDBOX);
        }
    }

    /** A path with no character Hadoop's glob expansion would act on. */
    static void plainPath(String what, String path) {
        for (int i = 0; i < path.length(); i++) {
            if (GLOB.indexOf(path.charAt(i)) >= 0) {
                throw SqlSandbox.refusal(what + " '" + path + "' is refused: paths may not hold glob or escape "
                        + "characters (" + GLOB + "), which Hadoop would expand; name a folder and filter its "
                        + "files with pathGlobFilter '*.wav'" + SANDBOX);
            }
        }
    }
}
