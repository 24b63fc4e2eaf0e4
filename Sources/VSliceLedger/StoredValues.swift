import GRDB
import VSliceModel
import VSliceSupport

// The model's IDs and statuses are stored as their plain strings (their raw values): GRDB's conformance for
// raw-representable values does the rest. Declared here so that only the ledger knows of GRDB.
extension TaskID: DatabaseValueConvertible {}
extension EventID: DatabaseValueConvertible {}
extension SegmentID: DatabaseValueConvertible {}
extension TraceID: DatabaseValueConvertible {}
extension TaskStatus: DatabaseValueConvertible {}
extension StepStatus: DatabaseValueConvertible {}
extension SegmentStatus: DatabaseValueConvertible {}
