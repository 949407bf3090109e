// One series over the last hour: value line, the baseline's band, anomaly markers, suppression windows.
import { useEffect, useMemo, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { formatLabels, formatNumber, localTime } from '../format'
import type { Anomaly, SeriesHistory } from '../types'

export interface TimeRange {
  /** epoch ms */
  from: number
  to: number
  label: string
}

interface Props {
  history: SeriesHistory
  anomalies: Anomaly[]
  suppressions: TimeRange[]
}

function cssVar(element: Element, name: string, fallback: string): string {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback
}

const isNumber = (value: number | null | undefined): value is number => typeof value === 'number' && Number.isFinite(value)

/**
 * The chart's x-range in epoch seconds, or null without points: from its first minute to the end of its
 * last one (a point stands for its whole minute, so an anomaly within the last minute is on the chart).
 */
function xRange(history: SeriesHistory): [number, number] | null {
  const xs = history.points.map((point) => Date.parse(point.at) / 1000).filter(isNumber)
  return xs.length === 0 ? null : [Math.min(...xs), Math.max(...xs) + 60]
}

/** The anomalies that fall within the chart's x-range (others would be drawn outside the plot). */
function anomaliesInRange(history: SeriesHistory, anomalies: Anomaly[]): Anomaly[] {
  const range = xRange(history)
  if (!range) return []
  return anomalies.filter((anomaly) => {
    const x = Date.parse(anomaly.at) / 1000
    return x >= range[0] && x <= range[1]
  })
}

/** A text account of the chart; `anomalies` are those within its x-range. */
export function summarize(history: SeriesHistory, anomalies: Anomaly[], suppressions: TimeRange[]): string {
  const last = history.points[history.points.length - 1]
  if (!last) return 'No samples in the last hour.'
  const parts = [`last value ${formatNumber(last.value)} at ${localTime(last.at)}`]
  parts.push(last.expected === null ? 'baseline still learning' : `expected ${formatNumber(last.expected)}`)
  if (last.lower !== null && last.upper !== null) parts.push(`band [${formatNumber(last.lower)}, ${formatNumber(last.upper)}]`)
  // Minutes without a value are left out (Math.min would read null as 0).
  const values = history.points.map((point) => point.value).filter(isNumber)
  if (values.length > 0) parts.push(`range over the hour ${formatNumber(Math.min(...values))} to ${formatNumber(Math.max(...values))}`)
  parts.push(`${anomalies.length} anomal${anomalies.length === 1 ? 'y' : 'ies'} marked`)
  if (suppressions.length > 0) parts.push(`${suppressions.length} suppression window${suppressions.length === 1 ? '' : 's'} shaded`)
  return `${parts.join(', ')}.`
}

export function SeriesChart({ history, anomalies, suppressions }: Props) {
  const container = useRef<HTMLDivElement>(null)
  const title = `${history.metric}${formatLabels(history.labels)}`
  const shown = useMemo(() => anomaliesInRange(history, anomalies), [history, anomalies])

  useEffect(() => {
    const element = container.current
    if (!element) return
    const colors = {
      line: cssVar(element, '--accent', '#1d5fd0'),
      band: cssVar(element, '--band', 'rgba(29,95,208,0.12)'),
      anomaly: cssVar(element, '--danger', '#b42318'),
      suppressed: cssVar(element, '--suppressed', 'rgba(128,128,128,0.18)'),
      text: cssVar(element, '--muted', '#5b6470'),
      grid: cssVar(element, '--border', '#d5d9df')
    }
    const points = history.points
    const xs = points.map((point) => Date.parse(point.at) / 1000)
    const data: uPlot.AlignedData = [
      xs,
      points.map((point) => point.value),
      points.map((point) => point.lower),
      points.map((point) => point.upper),
      points.map((point) => point.expected)
    ]
    const marks = shown.map((anomaly) => ({ x: Date.parse(anomaly.at) / 1000, y: anomaly.value, critical: anomaly.severity === 'critical' }))

    // Suppression windows behind the series, anomaly markers over them.
    const drawSuppressions = (u: uPlot) => {
      const { ctx } = u
      const { left, top, width, height } = u.bbox
      ctx.save()
      ctx.fillStyle = colors.suppressed
      for (const range of suppressions) {
        const x0 = Math.max(left, u.valToPos(range.from / 1000, 'x', true))
        const x1 = Math.min(left + width, u.valToPos(range.to / 1000, 'x', true))
        if (x1 > x0) ctx.fillRect(x0, top, x1 - x0, height)
      }
      ctx.restore()
    }
    const drawAnomalies = (u: uPlot) => {
      const { ctx } = u
      const ratio = uPlot.pxRatio
      ctx.save()
      for (const mark of marks) {
        const x = u.valToPos(mark.x, 'x', true)
        const y = u.valToPos(mark.y, 'y', true)
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue
        ctx.beginPath()
        ctx.fillStyle = colors.anomaly
        ctx.strokeStyle = colors.anomaly
        const size = (mark.critical ? 6 : 4.5) * ratio
        if (mark.critical) {
          ctx.moveTo(x, y - size)
          ctx.lineTo(x + size, y + size)
          ctx.lineTo(x - size, y + size)
          ctx.closePath()
        } else ctx.arc(x, y, size, 0, 2 * Math.PI)
        ctx.fill()
      }
      ctx.restore()
    }

    // Nulls (minutes without a value, a learning baseline) are no part of the range; marks are all in x-range.
    const yValues = [...points.flatMap((point) => [point.value, point.lower, point.upper, point.expected]), ...marks.map((mark) => mark.y)].filter(isNumber)
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: 220,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: {
        x: { time: true, range: (_u, min, max) => xRange(history) ?? [min, max] },
        y: {
          range: () => {
            const min = yValues.length ? Math.min(...yValues) : 0
            const max = yValues.length ? Math.max(...yValues) : 1
            const pad = (max - min) * 0.1 || Math.abs(max) * 0.1 || 1
            return [min - pad, max + pad]
          }
        }
      },
      axes: [
        { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid } },
        { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid }, size: 60 }
      ],
      series: [
        {},
        { label: 'value', stroke: colors.line, width: 2, points: { show: false } },
        { label: 'lower', stroke: colors.band, width: 1, points: { show: false } },
        { label: 'upper', stroke: colors.band, width: 1, points: { show: false } },
        { label: 'expected', stroke: colors.text, width: 1, dash: [4, 4], points: { show: false } }
      ],
      bands: [{ series: [3, 2], fill: colors.band }],
      hooks: { drawClear: [drawSuppressions], draw: [drawAnomalies] }
    }
    const plot = new uPlot(options, data, element)
    const resize = new ResizeObserver(() => {
      const width = Math.max(280, element.clientWidth)
      if (width !== plot.width) plot.setSize({ width, height: 220 })
    })
    resize.observe(element)
    return () => {
      resize.disconnect()
      plot.destroy()
    }
  }, [history, shown, suppressions])

  const summary = summarize(history, shown, suppressions)
  return (
    <figure class="chart" aria-label={`Chart of ${title} over the last hour`}>
      <figcaption>
        <strong>{history.metric}</strong> <code>{formatLabels(history.labels)}</code> <span class="muted">({history.kind})</span>
      </figcaption>
      {history.points.length === 0 ? (
        <p class="empty">No samples in the last hour.</p>
      ) : (
        <div class="chart-canvas" ref={container} role="img" aria-label={`${title}: ${summary}`} />
      )}
      <p class="chart-summary">{summary}</p>
      <div class="legend" aria-hidden="true">
        <span>
          <span class="swatch" style={{ background: 'var(--band)' }} />
          expected band
        </span>
        <span>
          <span class="swatch" style={{ background: 'var(--danger)' }} />
          anomaly (● warning, ▲ critical)
        </span>
        <span>
          <span class="swatch" style={{ background: 'var(--suppressed)' }} />
          suppression window
        </span>
      </div>
    </figure>
  )
}
