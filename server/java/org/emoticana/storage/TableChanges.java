package org.emoticana.storage;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A count of the table writes this server has committed. A session that remembers the count of
 * its last statement knows, at its next one, whether the tables it resolved then may have changed
 * since (org.emoticana.thrift.ServiceHooks forgets its resolved tables when they may have).
 */
public final class TableChanges {
    private static final AtomicLong COMMITTED = new AtomicLong();

    private TableChanges() {
    }

    /** The count now. */
    public static long count() {
        return COMMITTED.get();
    }

    /** A write has committed. */
    static void committed() {
        COMMITTED.incrementAndGet();
    }
}
