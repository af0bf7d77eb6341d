package org.emoticana.thrift;

import org.apache.hive.service.cli.CLIService;
import org.apache.hive.service.cli.thrift.ThriftBinaryCLIService;
import org.apache.hive.service.rpc.thrift.TExecuteStatementReq;
import org.apache.hive.service.rpc.thrift.TExecuteStatementResp;
import org.apache.hive.service.rpc.thrift.TGetFunctionsReq;
import org.apache.hive.service.rpc.thrift.TGetFunctionsResp;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusReq;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusResp;
import org.apache.thrift.TException;

/** HiveServer2's binary Thrift service with {@link ServiceHooks}. */
public class BinaryService extends ThriftBinaryCLIService {
    public BinaryService(CLIService cliService) {
        super(cliService);
    }

    @Override
    public TExecuteStatementResp ExecuteStatement(TExecuteStatementReq req) {
        return ServiceHooks.executeStatement(cliService, req);
    }

    @Override
    public TGetOperationStatusResp GetOperationStatus(TGetOperationStatusReq req) throws TException {
        return ServiceHooks.operationStatus(cliService, req, super.GetOperationStatus(req));
    }

    @Override
    public TGetFunctionsResp GetFunctions(TGetFunctionsReq req) {
        return ServiceHooks.functions(cliService, req);
    }
}
