// Ground-truth oracle: prints org.quartz.CronExpression.getNextValidTimeAfter chains.
// Input (stdin), one query per line, tab-separated: expression, IANA zone, start epoch millis, count.
// Output, one line per query: epoch millis of successive fire times separated by spaces
// ("-" marks the end of the chain), or "ERR <message>" when Quartz rejects the expression.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Date;
import java.util.TimeZone;
import org.quartz.CronExpression;

public final class QuartzOracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] parts = line.split("\t");
            try {
                CronExpression expr = new CronExpression(parts[0]);
                expr.setTimeZone(TimeZone.getTimeZone(parts[1]));
                Date cursor = new Date(Long.parseLong(parts[2]));
                int count = Integer.parseInt(parts[3]);
                StringBuilder row = new StringBuilder();
                for (int i = 0; i < count; i++) {
                    cursor = expr.getNextValidTimeAfter(cursor);
                    if (cursor == null) {
                        row.append(row.length() == 0 ? "-" : " -");
                        break;
                    }
                    if (row.length() > 0) {
                        row.append(' ');
                    }
                    row.append(cursor.getTime());
                }
                out.append(row).append('\n');
            } catch (Exception e) {
                out.append("ERR ").append(String.valueOf(e.getMessage()).replace('\n', ' ')).append('\n');
            }
        }
        System.out.print(out);
    }
}
