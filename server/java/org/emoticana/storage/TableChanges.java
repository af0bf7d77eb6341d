package org.emoticana.storage;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A count of the changes to tables this server has made: writes committed, and statements that
 * may change a table's definition or files (DDL, TRUNCATE) as they start and as they end. A session
 * that remembers the count of its last statement knows, at its next one, whether the tables it
 * resolved then may have changed since (org.emoticana.thrift.ServiceHooks forgets its resolved
 * tables when they may have).
 */
public final class TableChanges {
    private static final AtomicLong COMMITTED = new AtomicLong();

    private TableChanges() {
    }

    /** The count now. */
    public static long count() {
        return COMMITTED.get();
    }

    /** Tables may have changed. */
    public static void changed() {
        COMMITTED.incrementAndGet();
    }
}
