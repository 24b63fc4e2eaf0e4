import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The interrupt callback's per-file state: I/O deadline, abandon switch.
@Suite("interrupt callback: I/O deadline and abandon")
struct WatchTests {
    func callback(_ w: WorkWatch) -> Int32 { vsliceInterruptCallback(w.opaque) }

    @Test("a blocking call that outlasts the deadline is interrupted and the work abandoned with the reason")
    func deadline() throws {
        // Not before the deadline: one an hour away is not reached however slow this machine is.
        let far = WorkWatch(ioDeadline: 3600)
        #expect(far.io { callback(far) } == 0, "interrupted before the deadline")
        #expect(!far.abandoned)
        // After it: the call sleeps past it (a sleep lasts at least as long as asked).
        let w = WorkWatch(ioDeadline: 0.05)
        #expect(callback(w) == 0)
        let during = w.io { () -> Int32 in
            Thread.sleep(forTimeInterval: 0.12)
            return callback(w)
        }
        #expect(during == 1)
        #expect(w.abandoned)
        #expect(throws: VSliceError.self) { try w.check("read packet", path: "x.mp4") }
        do { try w.check("read packet", path: "x.mp4") } catch {
            #expect(error.kind == .processing)
            #expect(error.reason.contains("longer than"))
        }
    }

    @Test("outside a blocking call, time does not count; idle time counts from the last progress; abandon() interrupts at once")
    func abandon() {
        let w = WorkWatch(ioDeadline: 0.01)
        Thread.sleep(forTimeInterval: 0.03)
        #expect(callback(w) == 0)
        #expect(w.idleSeconds >= 0.03)
        // Since the progress, not before it: less idle time than the test itself has seen pass since.
        let before = Date()
        w.madeProgress()
        let idle = w.idleSeconds
        #expect(idle <= Date().timeIntervalSince(before) + 0.001, "idle \(idle) s")
        w.abandon("stalled")
        #expect(callback(w) == 1)
        #expect(vsliceInterruptCallback(nil) == 0, "a file without a watch is interrupted only by an abort")
    }
}
