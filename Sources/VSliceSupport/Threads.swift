import Foundation
import Synchronization

/// Runs blocking work (FFmpeg calls) on dedicated threads, at most `jobs` at once. Dispatch's cooperative
/// pool is not used for this: a long encode would starve it.
package enum WorkerPool {
    /// Runs `body` for every item, `jobs` at a time, in the given order, each with its job slot (0 ..< jobs: the
    /// thread it runs on, for resources given per slot such as a GPU). After the first failure, or once a stop
    /// is requested (first Ctrl-C), no further item starts; items already running finish.
    /// Returns the errors keyed by item. `slotEnded` runs on each slot's thread once it takes no more items
    /// (what the slot kept for its items, such as a program kept loaded, ends there).
    package static func run<Item: Sendable>(_ items: [Item], jobs: Int,
                                    body: @escaping @Sendable (Item, _ slot: Int) throws(VSliceError) -> Void,
                                    slotEnded: @escaping @Sendable (_ slot: Int) -> Void = { _ in }) -> [VSliceError] {
        let state = Mutex<(next: Int, errors: [VSliceError])>((0, []))
        let group = DispatchGroup()
        for slot in 0..<max(1, min(jobs, items.count)) {
            group.enter()
            let t = Thread {
                defer { group.leave() }
                defer { slotEnded(slot) }
                while true {
                    let i: Int? = state.withLock { s in
                        guard s.errors.isEmpty, !Cancellation.stopRequested, s.next < items.count else { return nil }
                        s.next += 1
                        return s.next - 1
                    }
                    guard let i else { return }
                    do throws(VSliceError) { try body(items[i], slot) } catch {
                        state.withLock { $0.errors.append(error) }
                    }
                }
            }
            t.stackSize = 8 << 20
            t.start()
        }
        group.wait()
        return state.withLock { $0.errors }
    }

    /// Runs `body` on its own thread; `wait()` on the result joins it.
    package static func spawn(_ body: @escaping @Sendable () throws(VSliceError) -> Void) -> Joinable {
        let j = Joinable()
        j.group.enter()
        let t = Thread {
            defer { j.group.leave() }
            do throws(VSliceError) { try body() } catch { j.error.withLock { $0 = error } }
        }
        t.stackSize = 8 << 20
        t.start()
        return j
    }

    package final class Joinable: Sendable {
        package let group = DispatchGroup()
        package let error = Mutex<VSliceError?>(nil)
        package func wait() -> VSliceError? {
            group.wait()
            return error.withLock { $0 }
        }
    }
}

/// Runs `tick` on its own thread now and then every `interval` seconds until `stop()`, which wakes it at
/// once and waits for it to end.
package final class PeriodicThread: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    package init(every interval: Double, _ tick: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                tick()
                _ = wake.wait(timeout: .now() + interval)
            }
            done.signal()
        }
        t.start()
    }

    package func stop() {
        stopped.store(true, ordering: .relaxed)
        wake.signal()
        done.wait()
    }
}

/// A flag that is set once and read from any thread.
package final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    package init() {}
    /// Sets the flag; true if this call set it (it was not set before).
    package func set() -> Bool { !value.exchange(true, ordering: .relaxed) }
    package var isSet: Bool { value.load(ordering: .relaxed) }
}

/// CPU time of the calling thread, seconds.
package func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
