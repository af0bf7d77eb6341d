package org.emoticana.auth;

/**
 * The address of the client whose connection the current thread serves, for the password
 * provider: HiveServer2 hands a login to the provider without it. The binary Thrift service
 * ({@code org.emoticana.thrift.BinaryService}) sets it when a connection is accepted, on the
 * worker thread that then runs the connection's SASL handshake and so the login.
 */
public final class ClientAddress {
    private static final ThreadLocal<String> CURRENT = new ThreadLocal<>();

    private ClientAddress() {
    }

    public static void set(String address) {
        CURRENT.set(address);
    }

    /** The client's IP address, or null when unknown (HTTP transport). */
    public static String current() {
        return CURRENT.get();
    }
}
