import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// publish: the merged file, checked once more against the checksum its merge recorded, renamed onto the output
/// inside a transaction that checks the lease (never over an existing output without `--force`).
enum PublishStage: Stage {
    static let node = Node.publish
    static let inputs: [Node] = [.verify]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let store = ctx.store, part = ctx.partPath
        if ctx.published {
            try store.markEventDone(ctx.taskId, node)
        } else {
            Fault.hit("publish")
            guard let recorded = try store.eventDone(ctx.taskId, .mux)?.detail, recorded == FileOps.signature(part) else {
                throw VSliceError(.processing, "publish", path: part,
                                  reason: "the merged file changed after it was written (checksum differs); not published — run the same command to merge again")
            }
            try ctx.traced(node) { (_) throws(VSliceError) in
                try store.publish(ctx.taskId, part: part, to: ctx.output, replace: ctx.request.force)
                Fault.hit("published")
                return StepRecord(value: ())
            }
        }
        ctx.onEvent(.published(path: ctx.output))
        return .done
    }
}
