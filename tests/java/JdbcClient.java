import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * A generic JDBC client, as a BI tool is one: the Hive driver from the documented class path
 * (pyspark's jars folder), every query given on the command line, each column read with
 * getObject and printed as {@code column<TAB>declared class<TAB>class of getObject<TAB>value}.
 * {@code META getFunctions PATTERN}, {@code META getTables PATTERN} (tables and views of every schema)
 * and {@code META getColumns PATTERN} (columns of every table) list through DatabaseMetaData;
 * {@code COUNT QUERY} reads every row of a large result with the driver's own fetch size and prints
 * only {@code rows<TAB>count<TAB>characters of all the values}. A query
 * or listing that fails prints {@code ERROR<TAB>SQLState<TAB>message} as the driver gives it (a BI
 * tool shows that message).
 *
 * <p>Usage: {@code java -cp "pyspark/jars/*:." JdbcClient URL QUERY...}
 */
public final class JdbcClient {
    public static void main(String[] args) throws SQLException {
        try (Connection connection = DriverManager.getConnection(args[0], "jdbc-client", "")) {
            for (int i = 1; i < args.length; i++) {
                System.out.println("### " + args[i]);
                if (args[i].startsWith("META ")) {
                    String[] call = args[i].split(" ", 3);
                    DatabaseMetaData meta = connection.getMetaData();
                    String[] columns = switch (call[1]) {
                        case "getFunctions" -> new String[] {"FUNCTION_SCHEM", "FUNCTION_NAME"};
                        case "getTables" -> new String[] {"TABLE_SCHEM", "TABLE_NAME"};
                        case "getColumns" -> new String[] {"TABLE_NAME", "COLUMN_NAME"};
                        default -> throw new IllegalArgumentException(args[i]);
                    };
                    try (ResultSet rows = call[1].equals("getFunctions") ? meta.getFunctions(null, null, call[2])
                            : call[1].equals("getTables") ? meta.getTables(null, "%", call[2], null)
                            : meta.getColumns(null, "%", "%", call[2])) {
                        while (rows.next()) {
                            System.out.println(rows.getString(columns[0]) + "\t" + rows.getString(columns[1]));
                        }
                    } catch (SQLException error) {
                        System.out.println("ERROR\t" + error.getSQLState() + "\t" + error.getMessage());
                    }
                    continue;
                }
                if (args[i].startsWith("COUNT ")) {
                    try (Statement statement = connection.createStatement();
                         ResultSet rows = statement.executeQuery(args[i].substring(6))) {
                        long count = 0;
                        long characters = 0;
                        while (rows.next()) {
                            count++;
                            for (int c = 1; c <= rows.getMetaData().getColumnCount(); c++) {
                                characters += String.valueOf(rows.getObject(c)).length();
                            }
                        }
                        System.out.println("rows\t" + count + "\t" + characters);
                    } catch (SQLException error) {
                        System.out.println("ERROR\t" + error.getSQLState() + "\t" + error.getMessage());
                    }
                    continue;
                }
                try (Statement statement = connection.createStatement();
                     ResultSet rows = statement.executeQuery(args[i])) {
                    ResultSetMetaData columns = rows.getMetaData();
                    while (rows.next()) {
                        for (int c = 1; c <= columns.getColumnCount(); c++) {
                            Object value = rows.getObject(c);
                            System.out.println(columns.getColumnLabel(c) + "\t" + columns.getColumnClassName(c) + "\t"
                                + (value == null ? "null" : value.getClass().getName()) + "\t"
                                + String.valueOf(value).replace('\n', ' '));
                        }
                    }
                } catch (SQLException error) {
                    System.out.println("ERROR\t" + error.getSQLState() + "\t" + error.getMessage());
                }
            }
        }
    }
}
