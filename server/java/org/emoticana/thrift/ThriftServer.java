package org.emoticana.thrift;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.hadoop.hive.common.ServerUtils;
import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.ql.metadata.Hive;
import org.apache.hive.service.CompositeService;
import org.apache.hive.service.Service;
import org.apache.hive.service.cli.CLIService;
import org.apache.hive.service.cli.thrift.ThriftCLIService;
import org.apache.hive.service.cli.thrift.ThriftHttpCLIService;
import org.apache.hive.service.server.HiveServer2;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.hive.HiveUtils$;
import org.apache.spark.sql.hive.thriftserver.HiveThriftServer2;
import org.apache.spark.sql.hive.thriftserver.HiveThriftServer2$;

/**
 * Starts Spark's HiveServer2 as {@code HiveThriftServer2.startWithContext} does, with its Thrift
 * service (binary or HTTP) replaced by Emoticana's ({@link BinaryService}, {@link HttpService})
 * between init and start, the way Spark itself swaps HiveServer2's services (setSuperField).
 */
public final class ThriftServer {
    private ThriftServer() {
    }

    public static HiveThriftServer2 start(SparkSession session) throws ReflectiveOperationException {
        HiveThriftServer2$ spark = HiveThriftServer2$.MODULE$;
        markHiveFunctionsRegistered();
        spark.systemExitOnError().set(true);
        HiveConf hiveConf = HiveUtils$.MODULE$
                .newClientForExecution(session.sparkContext().conf(), session.sessionState().newHadoopConf())
                .conf();
        ServerUtils.cleanUpScratchDir(hiveConf);
        HiveThriftServer2 server = new HiveThriftServer2(session);
        server.init(hiveConf);
        replaceThriftService(server, hiveConf, session);
        server.start();
        Method listenerAndUi = HiveThriftServer2$.class.getDeclaredMethod("createListenerAndUI",
                HiveThriftServer2.class, SparkContext.class);
        listenerAndUi.setAccessible(true);
        listenerAndUi.invoke(spark, server, session.sparkContext());
        return server;
    }

    /**
     * Marks Hive's one-time registration of its built-in functions as done, so that no thread
     * attempts it. Spark resolves every function itself, and Hive's FunctionRegistry cannot even be
     * loaded from pyspark's jars (one of its functions needs hive-llap-common, which Spark does not
     * ship). Closing a session calls Hive.get, which registers them whenever it has to create the
     * thread's Hive (when the handler thread's Hive was closed under it): the handler thread died
     * of NoClassDefFoundError half-way through closing the session, and since that is an Error,
     * not an Exception, Hive left the registration pending for good, so that every later thread
     * needing a new Hive would have waited for it forever.
     */
    private static void markHiveFunctionsRegistered() throws ReflectiveOperationException {
        Field state = field(Hive.class, "didRegisterAllFuncs");
        int notYet = field(Hive.class, "REG_FUNCS_NO").getInt(null);
        int done = field(Hive.class, "REG_FUNCS_DONE").getInt(null);
        AtomicInteger registration = (AtomicInteger) state.get(null);
        registration.compareAndSet(notYet, done);
        if (registration.get() != done) {
            throw new IllegalStateException("emoticana: Hive's function registration is stuck pending");
        }
    }

    @SuppressWarnings("unchecked")
    private static void replaceThriftService(HiveServer2 server, HiveConf hiveConf, SparkSession session)
            throws ReflectiveOperationException {
        List<Service> services = (List<Service>) field(CompositeService.class, "serviceList").get(server);
        for (int i = 0; i < services.size(); i++) {
            if (services.get(i) instanceof ThriftCLIService original) {
                CLIService cli = (CLIService) field(ThriftCLIService.class, "cliService").get(original);
                ThriftCLIService ours = original instanceof ThriftHttpCLIService
                        ? new HttpService(cli, field(ThriftHttpCLIService.class, "sniHostCheckEnabled").getBoolean(original),
                                session)
                        : new BinaryService(cli, session);
                ours.init(hiveConf);
                services.set(i, ours);
                field(HiveServer2.class, "thriftCLIService").set(server, ours);
                return;
            }
        }
        throw new IllegalStateException("emoticana: HiveServer2 has no Thrift service to replace");
    }

    private static Field field(Class<?> owner, String name) throws NoSuchFieldException {
        Field field = owner.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }
}
